"""Monthly recurring revenue: now, and month by month over the last N months (seed query 1).

A month's MRR is the monthly fees of the contracts running on its last day (today for the current
month), so a customer who moved from one contract to the next within a month counts once; two
contracts running side by side both count. Draft and terminated contracts never count (a
terminated contract's end is unknown); expired ones count for the months they ran.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import sqlalchemy as sa

from portal.services.money import format_money, to_cents
from portal.services.reports.common import Bar, Chart, Column, Report, bounded_int

NAME = "mrr"
TITLE = "Monthly recurring revenue"
DESCRIPTION = "Contract fees running now, and their trend month by month."
FILTERS = (("months", "Months shown", "number", "From 1 to 36; the current month is the last."),)
COLUMNS = [Column("month", "Month", "date"), Column("measured_on", "Measured on", "date"),
           Column("mrr", "MRR", "money"), Column("active_contracts", "Contracts", "number"),
           Column("customers", "Customers", "number"), Column("avg_contract_value", "Average fee", "money")]

SQL = sa.text("""
WITH months AS (
    SELECT m::date AS month, LEAST((m + interval '1 month' - interval '1 day')::date, :today) AS on_day
    FROM generate_series(date_trunc('month', CAST(:today AS date)) - make_interval(months => :months - 1),
                         date_trunc('month', CAST(:today AS date)), interval '1 month') AS m
)
SELECT months.month, months.on_day,
       COALESCE(SUM(sc.monthly_fee), 0) AS mrr,
       COUNT(sc.contract_id) AS active_contracts,
       COUNT(DISTINCT sc.customer_id) AS customers,
       AVG(sc.monthly_fee) AS avg_fee
FROM months
LEFT JOIN service_contracts sc
       ON sc.contract_status IN ('active', 'expired')
      AND sc.start_date <= months.on_day AND sc.end_date >= months.on_day
GROUP BY months.month, months.on_day
ORDER BY months.month
""")


RUNNING = ("active", "expired")


def contract_running(day: date):
    """SQL: a contract whose fee counts in the MRR on `day` (the same rule as SQL above)."""
    from portal.models import ServiceContract

    return sa.and_(ServiceContract.contract_status.in_(RUNNING), ServiceContract.start_date <= day,
                   ServiceContract.end_date >= day)


def parameters(args) -> dict:
    return {"months": bounded_int(args.get("months"), "months", 1, 36, 12)}


def build(session, principal, args, today: date) -> Report:
    params = parameters(args)
    rows = [{"month": r.month, "measured_on": r.on_day, "mrr": to_cents(r.mrr), "active_contracts": r.active_contracts,
             "customers": r.customers, "avg_contract_value": to_cents(r.avg_fee) if r.avg_fee is not None else None}
            for r in session.execute(SQL, {"today": today, "months": params["months"]})]
    now = rows[-1]
    first = rows[0]
    change = now["mrr"] - first["mrr"]
    summary = [("MRR now", format_money(now["mrr"])), ("Contracts running", str(now["active_contracts"])),
               (f"Change since {first['month']:%b %Y}", ("+" if change >= 0 else "") + format_money(change))]
    chart = Chart("MRR by month", [Bar(f"{r['month']:%b %Y}", (("mrr", float(r["mrr"])),), format_money(r["mrr"]),
                                       short=format_money(r["mrr"])) for r in rows], (("mrr", "MRR"),), unit="$")
    return Report(NAME, TITLE, params, today, COLUMNS, rows, chart, summary)


def mrr_now(session, today: date) -> Decimal:
    """The MRR running today (the account managers' home)."""
    return to_cents(session.execute(SQL, {"today": today, "months": 1}).one().mrr)
