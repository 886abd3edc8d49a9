"""Look-ups that read every row before (issue 14): who an email address is, the team's tickets at risk,
what is overdue.

idx_contacts_email_lower, idx_customers_email_lower: the API's `POST /api/tickets` (customer_email), mail in and the CRM's duplicate checks match addresses
case-insensitively, `lower(email) = lower(:given)`, which the plain indexes on the columns cannot serve:
each ticket made through the API read all 10,000 contacts of the large data set (3.6 ms of its 17 ms).
Not unique: addresses differing only in case may already exist (contacts_email_key is case-sensitive).

idx_tickets_at_risk: the homes' "at risk" counts (tickets being worked whose SLA warning time has passed)
as a range of one small index instead of a pass over every open ticket (7,000 of 23,000 on the large set).

idx_projects_open_number: the timesheet's work choice lists the first 30 open projects by number; the
unique index on project_number walked the 8,000 ended ones first (1.7 ms), this one has only the open.

idx_invoices_owed gains due_date: the admin's overdue count and total (sent and past due, or overdue)
from the index alone, without fetching each of the 5,500 owed invoices.

Revision ID: 0024_lookups
Revises: 0023_lists
Create Date: 2026-12-01
"""
from alembic import op

revision = "0024_lookups"
down_revision = "0023_lists"
branch_labels = None
depends_on = None


def upgrade():
    op.execute("CREATE INDEX idx_contacts_email_lower ON contacts (lower(email))")
    op.execute("CREATE INDEX idx_customers_email_lower ON customers (lower(primary_contact_email))")
    op.execute("CREATE INDEX idx_tickets_at_risk ON support_tickets (sla_at_risk_at)"
               " WHERE status IN ('open', 'assigned', 'in_progress')")
    op.execute("CREATE INDEX idx_projects_open_number ON projects (project_number)"
               " WHERE project_status IN ('planning', 'active', 'on_hold')")
    op.execute("DROP INDEX idx_invoices_owed")
    op.execute(
        "CREATE INDEX idx_invoices_owed ON invoices (customer_id) INCLUDE (total_amount, paid_amount, invoice_date,"
        " due_date, invoice_status) WHERE invoice_status IN ('sent', 'overdue')")


def downgrade():
    op.execute("DROP INDEX idx_invoices_owed")
    op.execute(
        "CREATE INDEX idx_invoices_owed ON invoices (customer_id) INCLUDE (total_amount, paid_amount, invoice_date)"
        " WHERE invoice_status IN ('sent', 'overdue')")
    op.execute("DROP INDEX IF EXISTS idx_projects_open_number")
    op.execute("DROP INDEX IF EXISTS idx_tickets_at_risk")
    op.execute("DROP INDEX IF EXISTS idx_customers_email_lower")
    op.execute("DROP INDEX IF EXISTS idx_contacts_email_lower")
