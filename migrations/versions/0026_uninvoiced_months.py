"""Work not yet invoiced per customer and month, counted by the worker (issue 14).

The portal's usage page lists the other months holding approved billable work not yet invoiced (on no
live line of an invoice the customer received). Read live, that checks every approved billable entry of
the customer's history against the invoice lines under row-level security: 4 ms for a typical customer
of the large data set, 7.8 s for the 400,000-ticket one (two million entries). The worker's
scan.unbilled_work, which already rewrites report_unbilled every five minutes, now rewrites this table
too, and the page says when the months were counted. The migration counts them once, so the list
is there before the worker's first run.

idx_time_customer_date (customer_id, work_date): the usage page's month of a customer's entries was every
entry of the customer filtered by date (390 ms for the largest one). The seed's idx_time_customer stays.

Revision ID: 0026_uninvoiced_months
Revises: 0025_pending_totals
Create Date: 2026-12-01
"""
from alembic import op
import sqlalchemy as sa

revision = "0026_uninvoiced_months"
down_revision = "0025_pending_totals"
branch_labels = None
depends_on = None

CONTACT_ROLE = "portal_contact"


def upgrade():
    op.create_table(
        "report_uninvoiced_months",
        sa.Column("customer_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("hours", sa.Numeric(14, 2), nullable=False),
        sa.Column("entries", sa.Integer(), nullable=False),
        sa.Column("refreshed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("customer_id", "month", name=op.f("pk_report_uninvoiced_months")),
    )
    op.execute("ALTER TABLE report_uninvoiced_months ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE report_uninvoiced_months FORCE ROW LEVEL SECURITY")
    op.execute(f"CREATE POLICY staff_all ON report_uninvoiced_months USING (current_user <> '{CONTACT_ROLE}')"
               f" WITH CHECK (current_user <> '{CONTACT_ROLE}')")
    # A contact reads its own customer's months (the usage page), nothing else.
    op.execute(f"CREATE POLICY contact_read ON report_uninvoiced_months FOR SELECT TO {CONTACT_ROLE}"
               " USING (customer_id = portal_customer_id())")
    op.execute(f"GRANT SELECT ON report_uninvoiced_months TO {CONTACT_ROLE}")
    # The first count now, so the list is there before the worker's first run after the upgrade.
    op.execute("""
        INSERT INTO report_uninvoiced_months (customer_id, month, hours, entries, refreshed_at)
        SELECT e.customer_id, date_trunc('month', e.work_date)::date, sum(e.hours_worked), count(*), now()
        FROM time_entries e
        WHERE e.is_billable AND e.approval_status = 'approved'
          AND NOT EXISTS (SELECT 1 FROM invoice_line_items l JOIN invoices i ON i.invoice_id = l.invoice_id
                          WHERE l.time_entry_id = e.entry_id AND l.time_entry_id IS NOT NULL AND l.live
                            AND i.invoice_status <> 'draft')
        GROUP BY 1, 2""")
    op.execute("CREATE INDEX idx_time_customer_date ON time_entries (customer_id, work_date)")


def downgrade():
    op.execute("DROP INDEX idx_time_customer_date")
    op.drop_table("report_uninvoiced_months")
