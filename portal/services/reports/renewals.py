"""Contracts ending in the next N days (default 90), the seed's Critical / High / Medium (query 2).

Days until expiration is the integer date difference (errata 7: date minus date is an integer).
"""

from __future__ import annotations

from collections import Counter
from datetime import date
from decimal import Decimal

import sqlalchemy as sa

from portal.services.money import format_money, to_cents
from portal.services.reports.common import Bar, Chart, Column, Report, bounded_int

NAME = "renewals"
TITLE = "Renewal pipeline"
DESCRIPTION = "Active contracts ending soon: Critical within 30 days, High within 60, Medium after."
FILTERS = (("days", "Ending within (days)", "number", "From 1 to 365."),)
COLUMNS = [Column("customer", "Customer"), Column("contract_number", "Contract"), Column("end_date", "Ends", "date"),
           Column("days_until_expiration", "Days left", "number"), Column("renewal_priority", "Priority"),
           Column("monthly_fee", "Monthly fee", "money"), Column("auto_renewal", "Renews by itself")]
PRIORITIES = ("Critical", "High", "Medium")

SQL = sa.text("""
SELECT c.company_name, sc.contract_number, sc.end_date, sc.monthly_fee, sc.auto_renewal,
       sc.end_date - CAST(:today AS date) AS days_left
FROM service_contracts sc
JOIN customers c ON c.customer_id = sc.customer_id
WHERE sc.contract_status = 'active'
  AND sc.end_date BETWEEN CAST(:today AS date) AND CAST(:today AS date) + :days
ORDER BY sc.end_date, sc.contract_number
""")


def priority(days_left: int) -> str:
    return "Critical" if days_left <= 30 else "High" if days_left <= 60 else "Medium"


def parameters(args) -> dict:
    return {"days": bounded_int(args.get("days"), "days", 1, 365, 90)}


def build(session, principal, args, today: date) -> Report:
    params = parameters(args)
    rows = [{"customer": r.company_name, "contract_number": r.contract_number, "end_date": r.end_date,
             "days_until_expiration": r.days_left, "renewal_priority": priority(r.days_left),
             "monthly_fee": to_cents(r.monthly_fee), "auto_renewal": r.auto_renewal}
            for r in session.execute(SQL, {"today": today, "days": params["days"]})]
    count = Counter(row["renewal_priority"] for row in rows)
    fees = {p: sum((row["monthly_fee"] for row in rows if row["renewal_priority"] == p), Decimal("0.00"))
            for p in PRIORITIES}
    summary = [("Contracts ending", str(len(rows))),
               ("Monthly fees at stake", format_money(sum(fees.values(), Decimal("0.00"))))]
    chart = Chart("Monthly fees at stake by priority",
                  [Bar(p, ((p.lower(), float(fees[p])),),
                       f"{format_money(fees[p])} in {count[p]} contract{'' if count[p] == 1 else 's'}",
                       short=f"{format_money(fees[p])} ({count[p]})")
                   for p in PRIORITIES], tuple((p.lower(), p) for p in PRIORITIES), unit="$")
    return Report(NAME, TITLE, params, today, COLUMNS, rows, chart, summary)


def renewals_count(session, today: date, days: int = 90) -> int:
    """How many active contracts end within `days` (the account managers' home)."""
    return len(session.execute(SQL, {"today": today, "days": days}).all())
