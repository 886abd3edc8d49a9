"""Customer profitability over the last N calendar months (default 12, this month included), one row
per customer (seed query 5, corrected by errata 9).

Revenue is what was invoiced in the period: the subtotal (tax is collected for others) of every
invoice dated in it that is neither a draft nor cancelled (common.revenue_invoice), whether paid
yet or not; invoices carry the contract fees as monthly-fee lines, so fees are in it once.
Internal cost is every approved hour worked in the period, billable or not, at the employee's
internal rate. The hours come from report_time_month, kept by triggers on time_entries (migration
0019), so the report reads a few thousand sums instead of millions of entries. Internal rates are
for account managers and admins only (policy.may_see_internal_rates), so this report is too.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import sqlalchemy as sa

from portal.models import Invoice
from portal.services.money import format_money, to_cents
from portal.services.reports.common import Bar, Chart, Column, Report, bounded_int, percent, revenue_invoice

NAME = "profitability"
TITLE = "Customer profitability"
DESCRIPTION = "Invoiced revenue against the internal cost of all approved time, per customer."
FILTERS = (("months", "Calendar months", "number", "From 1 to 36, this month included."),)
COLUMNS = [Column("customer", "Customer"), Column("revenue", "Revenue", "money"),
           Column("internal_cost", "Internal cost", "money"), Column("gross_profit", "Gross profit", "money"),
           Column("margin_percent", "Margin", "percent"), Column("approved_hours", "Approved hours", "hours")]


def add_months(first: date, months: int) -> date:
    index = first.year * 12 + first.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def period(today: date, months: int) -> tuple[date, date]:
    """The first day of the first month and the last day of the current month."""
    this_month = today.replace(day=1)
    return add_months(this_month, -(months - 1)), add_months(this_month, 1) - timedelta(days=1)


def _sql():
    revenue = (sa.select(Invoice.customer_id, sa.func.sum(Invoice.subtotal).label("revenue"))
               .where(revenue_invoice(), Invoice.invoice_date.between(sa.bindparam("start"), sa.bindparam("end")))
               .group_by(Invoice.customer_id).cte("revenue"))
    cost = sa.text("""
        SELECT s.customer_id, SUM(s.approved_hours * e.hourly_rate_internal) AS cost, SUM(s.approved_hours) AS hours
        FROM report_time_month s JOIN employees e ON e.employee_id = s.employee_id
        WHERE s.month BETWEEN :start AND :end
        GROUP BY s.customer_id""").columns(sa.column("customer_id"), sa.column("cost"), sa.column("hours")).cte("cost")
    customers = sa.table("customers", sa.column("customer_id"), sa.column("company_name"))
    return (sa.select(customers.c.company_name, sa.func.coalesce(revenue.c.revenue, 0).label("revenue"),
                      sa.func.coalesce(cost.c.cost, 0).label("cost"), sa.func.coalesce(cost.c.hours, 0).label("hours"))
            .select_from(customers.outerjoin(revenue, revenue.c.customer_id == customers.c.customer_id)
                         .outerjoin(cost, cost.c.customer_id == customers.c.customer_id))
            .where(sa.or_(revenue.c.customer_id.is_not(None), cost.c.customer_id.is_not(None))))


def parameters(args) -> dict:
    return {"months": bounded_int(args.get("months"), "months", 1, 36, 12)}


def build(session, principal, args, today: date) -> Report:
    params = parameters(args)
    start, end = period(today, params["months"])
    rows = []
    for r in session.execute(_sql(), {"start": start, "end": end}):
        revenue, cost = to_cents(r.revenue), to_cents(r.cost)
        rows.append({"customer": r.company_name, "revenue": revenue, "internal_cost": cost,
                     "gross_profit": revenue - cost, "margin_percent": percent(revenue - cost, revenue),
                     "approved_hours": r.hours})
    rows.sort(key=lambda row: (-row["gross_profit"], row["customer"]))
    revenue = sum((row["revenue"] for row in rows), Decimal("0.00"))
    cost = sum((row["internal_cost"] for row in rows), Decimal("0.00"))
    summary = [("Period", f"{start:%b %Y} to {end:%b %Y}"), ("Revenue", format_money(revenue)),
               ("Gross profit", format_money(revenue - cost)), ("Margin", f"{percent(revenue - cost, revenue) or 0} %")]
    chart = Chart("Revenue and internal cost, by gross profit", [
        Bar(row["customer"], (("revenue", float(row["revenue"])), ("cost", float(row["internal_cost"]))),
            f"revenue {format_money(row['revenue'])}, cost {format_money(row['internal_cost'])}, "
            f"profit {format_money(row['gross_profit'])}", mark=row["gross_profit"] < 0,
            short=f"profit {format_money(row['gross_profit'])}")
        for row in rows[:15]], (("revenue", "Revenue"), ("cost", "Internal cost")), unit="$", grouped=True)
    return Report(NAME, TITLE, {**params, "start": start, "end": end}, today, COLUMNS, rows, chart, summary)
