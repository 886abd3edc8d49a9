"""Lists that read an index in their own order (issue 14, the bench's slowest staff lists).

idx_time_pending_oldest: approvals, oldest first (work date, employee, entry), a page of 100 from the
index instead of sorting every pending entry; the count and totals of the approver's pending time from
the index alone (hours, rate and what decides who may approve it are included).

idx_invoices_newest: the staff invoice list, newest first (invoice date, then id), read backwards; its
bounded count (services/billing.invoice_list) from the index alone.

idx_invoices_owed: what is still owed (sent and overdue invoices only), summed from the index alone
instead of a pass over every paid invoice of five years.

idx_tickets_sla_period: the SLA report and the seniors' home read the tickets opened in a period that
have a response deadline, with what they count included: an index-only scan instead of fetching each
ticket (the last 30 days of the large data set: 25,000 tickets).

idx_phases_awaiting: phases waiting for the customer's decision (the staff and portal homes), the few
undecided ones instead of every phase (the admin's home listed them from all 35,000: 6.7 to 0.8 ms).

Revision ID: 0023_lists
Revises: 0021_speed
Create Date: 2026-12-01
"""
from alembic import op

revision = "0023_lists"
down_revision = "0021_speed"
branch_labels = None
depends_on = None


def upgrade():
    op.execute(
        "CREATE INDEX idx_time_pending_oldest ON time_entries (work_date, employee_id, entry_id)"
        " INCLUDE (hours_worked, billing_rate, ticket_id, project_id, customer_id)"
        " WHERE approval_status = 'pending'")
    op.execute("CREATE INDEX idx_invoices_newest ON invoices (invoice_date, invoice_id)")
    op.execute(
        "CREATE INDEX idx_invoices_owed ON invoices (customer_id) INCLUDE (total_amount, paid_amount, invoice_date)"
        " WHERE invoice_status IN ('sent', 'overdue')")
    op.execute(
        "CREATE INDEX idx_tickets_sla_period ON support_tickets (created_at)"
        " INCLUDE (customer_id, priority, first_response_at, response_due_at)"
        " WHERE contract_id IS NOT NULL AND response_due_at IS NOT NULL")
    op.execute(
        "CREATE INDEX idx_phases_awaiting ON project_phases (approval_requested_at)"
        " WHERE requires_approval IS TRUE AND approval_requested_at IS NOT NULL"
        " AND approved_at IS NULL AND rejected_at IS NULL")


def downgrade():
    op.execute("DROP INDEX idx_phases_awaiting")
    op.execute("DROP INDEX idx_tickets_sla_period")
    op.execute("DROP INDEX idx_invoices_owed")
    op.execute("DROP INDEX idx_invoices_newest")
    op.execute("DROP INDEX idx_time_pending_oldest")
