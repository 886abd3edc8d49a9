"""Indexes for the staff queue at a million tickets (docs/performance.md), and room for ticket numbers.

- idx_tickets_queue covers the columns the queue filters and counts on, so the total and the
  counts per status and SLA state read the index alone; partial indexes on open tickets serve the
  priority and age sorts and the full-text search.
- ticket_number grows from VARCHAR(15) to VARCHAR(20): one sequence numbers tickets of all years,
  and TKT-2026-1000000 (the millionth) needs 16 characters.

Revision ID: 0006_queue_indexes
Revises: 0005_phase_approval
Create Date: 2026-11-25
"""
from alembic import op
import sqlalchemy as sa

revision = "0006_queue_indexes"
down_revision = "0005_phase_approval"
branch_labels = None
depends_on = None

OPEN = sa.text("status <> 'closed'")
COVERED = ["status", "priority", "category", "customer_id", "assigned_employee_id", "sla_at_risk_at",
           "response_due_at"]


SEARCH_TRIGGER = """
CREATE TRIGGER trg_ticket_search
    BEFORE INSERT OR UPDATE OF ticket_number, title, description ON support_tickets
    FOR EACH ROW EXECUTE FUNCTION ticket_search_refresh();
"""


def _retype_ticket_number(length: int) -> None:
    # A column named in a trigger's UPDATE OF list cannot change type while the trigger exists.
    op.execute("DROP TRIGGER trg_ticket_search ON support_tickets")
    op.alter_column("support_tickets", "ticket_number", type_=sa.String(length), existing_nullable=False)
    op.execute(SEARCH_TRIGGER)


def upgrade():
    _retype_ticket_number(20)
    op.drop_index("idx_tickets_queue", table_name="support_tickets")
    op.create_index("idx_tickets_queue", "support_tickets", ["sla_due_at", "ticket_id"],
                    postgresql_include=COVERED, postgresql_where=OPEN)
    op.create_index("idx_tickets_open_priority", "support_tickets", [sa.text("priority DESC"), "sla_due_at",
                                                                     "ticket_id"], postgresql_where=OPEN)
    op.create_index("idx_tickets_open_created", "support_tickets", ["created_at", "ticket_id"], postgresql_where=OPEN)
    op.create_index("idx_tickets_open_search", "support_tickets", ["search_vector"], postgresql_using="gin",
                    postgresql_where=OPEN)


def downgrade():
    op.drop_index("idx_tickets_open_search", table_name="support_tickets")
    op.drop_index("idx_tickets_open_created", table_name="support_tickets")
    op.drop_index("idx_tickets_open_priority", table_name="support_tickets")
    op.drop_index("idx_tickets_queue", table_name="support_tickets")
    op.create_index("idx_tickets_queue", "support_tickets", ["sla_due_at", "ticket_id"], postgresql_where=OPEN)
    _retype_ticket_number(15)
