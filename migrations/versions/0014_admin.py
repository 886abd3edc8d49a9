"""Admin: employees (department, the seed's email rule, one email per person whatever its case) and
the audit log's indexes for filters and keyset pagination over millions of events.

- employees.department: the issue's list, filters and form need it; the seed has it on contacts
  only. Free text up to 100 characters, like contacts.department.
- chk_email_format on employees: the rule the seed gives customers and contacts.
- idx_employees_email_lower: unique on lower(email), as accounts are: a login is matched
  case-insensitively, so two employees may not differ only in the case of their address.
- The audit log is read newest first, 50 at a time, by keyset on (occurred_at, event_id):
  idx_audit_occurred and idx_audit_row gain event_id (the tie-breaker of the keyset), and three
  indexes serve the other filters in that same order: kind of object, actor, action. Measured on
  three million events in docs/performance.md ("The audit log").

Revision ID: 0014_admin
Revises: 0011_waiting_no_response
Create Date: 2026-12-01
"""
from alembic import op
import sqlalchemy as sa

revision = "0014_admin"
down_revision = "0017_webhook_secrets_at_rest"
branch_labels = None
depends_on = None

EMAIL_PATTERN = r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$"


def upgrade():
    op.add_column("employees", sa.Column("department", sa.String(length=100), nullable=True))
    op.create_check_constraint("chk_email_format", "employees", f"email ~* '{EMAIL_PATTERN}'")
    op.create_index("idx_employees_email_lower", "employees", [sa.text("lower(email)")], unique=True)

    op.drop_index("idx_audit_occurred", table_name="audit_events")
    op.drop_index("idx_audit_row", table_name="audit_events")
    op.create_index("idx_audit_occurred", "audit_events", ["occurred_at", "event_id"])
    op.create_index("idx_audit_row", "audit_events", ["table_name", "row_id", "occurred_at", "event_id"])
    op.create_index("idx_audit_table", "audit_events", ["table_name", "occurred_at", "event_id"])
    op.create_index("idx_audit_actor", "audit_events", ["actor_type", "actor_id", "occurred_at", "event_id"])
    op.create_index("idx_audit_action", "audit_events", ["action", "occurred_at", "event_id"])


def downgrade():
    op.drop_index("idx_audit_action", table_name="audit_events")
    op.drop_index("idx_audit_actor", table_name="audit_events")
    op.drop_index("idx_audit_table", table_name="audit_events")
    op.drop_index("idx_audit_row", table_name="audit_events")
    op.drop_index("idx_audit_occurred", table_name="audit_events")
    op.create_index("idx_audit_row", "audit_events", ["table_name", "row_id", "occurred_at"])
    op.create_index("idx_audit_occurred", "audit_events", ["occurred_at"])

    op.drop_index("idx_employees_email_lower", table_name="employees")
    op.drop_constraint("chk_email_format", "employees", type_="check")
    op.drop_column("employees", "department")
