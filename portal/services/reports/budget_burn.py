"""Project budget burn: active and planning projects, those over 80 % of their budget marked (seed
query 7). A project at exactly 80 % is not over (the seed's "> 0.8").

The cost is approved hours x billing rate, which the database keeps on projects.actual_cost
(update_project_cost, migration 0004), so the report reads one row per project. Project managers
see their own projects (policy.may_see_project_money); account managers and admins all.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import sqlalchemy as sa

from portal.models import EmployeeRole
from portal.services import policy
from portal.services.money import format_money
from portal.services.reports.common import Bar, Chart, Column, Report, percent

NAME = "budget-burn"
TITLE = "Project budget burn"
DESCRIPTION = "Active and planning projects: budget used, those over 80 % marked."
THRESHOLD = Decimal("80")
FILTERS = (("over", "Show", "choice", None),)
OVER_CHOICES = (("", "Every active or planning project"), ("1", "Only those over 80 %"))
COLUMNS = [Column("project_number", "Project"), Column("project_name", "Name"), Column("customer", "Customer"),
           Column("project_manager", "Manager"), Column("project_status", "Status"),
           Column("budget_amount", "Budget", "money"), Column("current_cost", "Cost so far", "money"),
           Column("remaining_budget", "Remaining", "money"), Column("budget_consumed_percent", "Used", "percent"),
           Column("over_80_percent", "Over 80 %")]

SQL = """
SELECT p.project_id, p.project_number, p.project_name, c.company_name, p.project_status::text AS status,
       m.first_name || ' ' || m.last_name AS manager, p.budget_amount, p.actual_cost
FROM projects p
JOIN customers c ON c.customer_id = p.customer_id
LEFT JOIN employees m ON m.employee_id = p.project_manager_id
WHERE p.project_status IN ('active', 'planning') {mine}
"""


def parameters(args) -> dict:
    return {"over": (args.get("over") or "").strip() == "1"}


def only_own(principal) -> bool:
    """A project manager reads the burn of their own projects only."""
    return policy.has_role(principal, EmployeeRole.PROJECT_MANAGER)


# The most consumed first, as burn_rows sorts them (the percentage rounded as `percent` rounds it):
# the staff homes read the first ten of 1,800 active projects without fetching the rest.
FIRST = """
ORDER BY round(p.actual_cost * 100 / NULLIF(p.budget_amount, 0), 1) DESC NULLS LAST, p.project_number
LIMIT :limit
"""


def burn_rows(session, principal, *, limit: int | None = None) -> list[dict]:
    """Every active or planning project's burn (the most consumed first); with `limit`, only the first."""
    mine = "AND p.project_manager_id = :me" if only_own(principal) else ""
    rows = []
    sql = SQL.format(mine=mine) + (FIRST if limit else "")
    for r in session.execute(sa.text(sql), {"me": principal.employee_id, "limit": limit}):
        used = percent(r.actual_cost, r.budget_amount)
        rows.append({"project_number": r.project_number, "project_name": r.project_name, "customer": r.company_name,
                     "project_manager": r.manager or "", "project_status": r.status,
                     "budget_amount": r.budget_amount, "current_cost": r.actual_cost,
                     "remaining_budget": r.budget_amount - r.actual_cost, "budget_consumed_percent": used,
                     "over_80_percent": r.actual_cost * 100 > THRESHOLD * r.budget_amount})
    rows.sort(key=lambda row: (-row["budget_consumed_percent"], row["project_number"]))
    return rows


def build(session, principal, args, today: date) -> Report:
    params = parameters(args)
    rows = burn_rows(session, principal)
    over = [row for row in rows if row["over_80_percent"]]
    summary = [("Projects", str(len(rows))), ("Over 80 %", str(len(over)))]
    chart = Chart("Budget used", [
        Bar(row["project_number"], (("used", float(row["budget_consumed_percent"])),),
            f"{row['project_name']}: {row['budget_consumed_percent']} % used, "
            f"{format_money(row['remaining_budget'])} left" + (" (over 80 %)" if row["over_80_percent"] else ""),
            mark=row["over_80_percent"], short=f"{row['budget_consumed_percent']} %")
        for row in (over if params["over"] else rows)[:20]], (("used", "Budget used"),), unit="%",
        reference=80.0, reference_label="80 %")
    if params["over"]:
        rows = over
    return Report(NAME, TITLE, params, today, COLUMNS, rows, chart, summary)
