"""Finding who an email address belongs to without a pass over every contact and customer (issue 14).

The API's `POST /api/tickets` (customer_email), mail in and the CRM's duplicate checks match addresses
case-insensitively, `lower(email) = lower(:given)`, which the plain indexes on the columns cannot serve:
each ticket made through the API read all 10,000 contacts of the large data set (3.6 ms of its 17 ms).
Not unique: addresses differing only in case may already exist (contacts_email_key is case-sensitive).

Revision ID: 0024_email_lookup
Revises: 0023_lists
Create Date: 2026-12-01
"""
from alembic import op

revision = "0024_email_lookup"
down_revision = "0023_lists"
branch_labels = None
depends_on = None


def upgrade():
    op.execute("CREATE INDEX idx_contacts_email_lower ON contacts (lower(email))")
    op.execute("CREATE INDEX idx_customers_email_lower ON customers (lower(primary_contact_email))")


def downgrade():
    op.execute("DROP INDEX IF EXISTS idx_customers_email_lower")
    op.execute("DROP INDEX IF EXISTS idx_contacts_email_lower")
