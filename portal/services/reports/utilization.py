"""Technician utilization for a chosen week (Monday to Sunday), billable and non-billable apart,
against each person's weekly capacity (seed query 3).

The week's hours are every entry dated in it that was not rejected (pending time is work done,
still to be approved; rejected time was not accepted as work). Active technicians and senior
technicians, as the seed lists them.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import sqlalchemy as sa

from portal.services.reports.common import Bar, Chart, Column, Report, day, percent

NAME = "utilization"
TITLE = "Technician utilization"
DESCRIPTION = "Hours logged in a week, billable and non-billable, against each technician's capacity."
FILTERS = (("week", "Week of", "date", "Any day of the week; weeks start on Monday."),)
COLUMNS = [Column("technician", "Technician"), Column("capacity_hours", "Capacity", "hours"),
           Column("billable_hours", "Billable", "hours"), Column("non_billable_hours", "Non-billable", "hours"),
           Column("total_hours", "Total", "hours"), Column("utilization_percent", "Utilization", "percent"),
           Column("billable_percent", "Billable share of capacity", "percent"),
           Column("customers_served", "Customers", "number")]

SQL = sa.text("""
SELECT e.employee_id, e.first_name || ' ' || e.last_name AS technician, e.capacity_hours_weekly AS capacity,
       COALESCE(SUM(te.hours_worked) FILTER (WHERE te.is_billable), 0) AS billable,
       COALESCE(SUM(te.hours_worked) FILTER (WHERE NOT te.is_billable), 0) AS non_billable,
       COUNT(DISTINCT te.customer_id) AS customers
FROM employees e
LEFT JOIN time_entries te
       ON te.employee_id = e.employee_id
      AND te.work_date >= CAST(:monday AS date) AND te.work_date < CAST(:monday AS date) + 7
      AND te.approval_status <> 'rejected'
WHERE e.employment_status = 'active' AND e.role IN ('technician', 'senior_technician')
GROUP BY e.employee_id
""")


def parameters(args, today: date) -> dict:
    chosen = day(args.get("week"), "week", today)
    return {"week": chosen - timedelta(days=chosen.weekday())}


def build(session, principal, args, today: date) -> Report:
    params = parameters(args, today)
    monday = params["week"]
    rows = []
    for r in session.execute(SQL, {"monday": monday}):
        total = r.billable + r.non_billable
        rows.append({"technician": r.technician, "capacity_hours": r.capacity, "billable_hours": r.billable,
                     "non_billable_hours": r.non_billable, "total_hours": total,
                     "utilization_percent": percent(total, r.capacity),
                     "billable_percent": percent(r.billable, r.capacity), "customers_served": r.customers})
    rows.sort(key=lambda row: (-(row["utilization_percent"] or 0), row["technician"]))
    billable = sum((row["billable_hours"] for row in rows), Decimal(0))
    total = sum((row["total_hours"] for row in rows), Decimal(0))
    capacity = sum((row["capacity_hours"] for row in rows), Decimal(0))
    summary = [("Week", f"{monday:%d %b} to {monday + timedelta(days=6):%d %b %Y}"),
               ("Team utilization", f"{percent(total, capacity) or 0} %"),
               ("Billable hours", f"{billable} of {total}")]
    chart = Chart("Share of weekly capacity", [
        Bar(row["technician"], (("billable", float(row["billable_percent"] or 0)),
                                ("non_billable", float(percent(row["non_billable_hours"], row["capacity_hours"]) or 0))),
            f"{row['utilization_percent']} %: {row['billable_hours']} h billable, "
            f"{row['non_billable_hours']} h non-billable of {row['capacity_hours']} h",
            mark=(row["utilization_percent"] or 0) > 100, short=f"{row['utilization_percent']} %")
        for row in rows], (("billable", "Billable"), ("non_billable", "Non-billable")), unit="%",
        reference=100.0, reference_label="capacity")
    return Report(NAME, TITLE, params, today, COLUMNS, rows, chart, summary)
