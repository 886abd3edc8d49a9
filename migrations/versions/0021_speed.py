"""Speed at scale (issue 14): a company's unresolved tickets from an index of their own.

idx_tickets_customer_open: the customer's not-yet-resolved tickets (a customer's "open tickets":
services/statuses.TICKETS_UNRESOLVED) in the portal's list order, with what the portal's counts,
filters and home ordering read (status, submitter, SLA due time) included. A partial index: the
portal's open list and counts read only those entries (about 3 % of a large company's history)
instead of walking all of the company's entries and filtering each under row-level security;
the query spells the same status list so the planner proves the predicate.

idx_time_pending (an employee's pending time: the staff home's "my pending hours", the timesheet's
and approvals' pending entries, instead of intersecting all of the employee's entries with all
pending ones) is made by 0019_reports, whose homes read it too.

idx_phases_project: a project's phases (the foreign key had no index): the portal home's "phases
awaiting your decision" read all 35,000 phases of the large data set under row-level security
(27 ms); now the company's projects' phases. Measured in
docs/performance.md ("Speed at scale").

Revision ID: 0021_speed
Revises: 0019_reports
Create Date: 2026-12-01
"""
from alembic import op

revision = "0021_speed"
down_revision = "0019_reports"
branch_labels = None
depends_on = None


def upgrade():
    op.execute(
        "CREATE INDEX idx_tickets_customer_open ON support_tickets"
        " (customer_id, last_activity_at DESC, ticket_id DESC) INCLUDE (status, contact_id, sla_due_at)"
        " WHERE status IN ('open', 'assigned', 'in_progress', 'waiting_customer')")
    op.execute("CREATE INDEX idx_phases_project ON project_phases (project_id)")


def downgrade():
    op.execute("DROP INDEX idx_phases_project")
    op.execute("DROP INDEX idx_tickets_customer_open")
