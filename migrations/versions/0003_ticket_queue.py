"""The staff queue: the SLA clock on the ticket, its status log, optimistic locking, full-text search.

- support_tickets gets its SLA due times (response, resolution, the next deadline and when it
  turns "at risk"), last activity, a version for optimistic locking, and a search vector over
  number, title, description and every comment, kept by triggers and indexed with GIN.
- ticket_status_changes logs every status move; services/sla.py recomputes the due times from it.
- set_first_response (a seed trigger) no longer treats assignment as a response: DESIGN.md makes
  the first public staff reply the first response. The trigger stays as a safety net: a ticket
  that reaches waiting_customer or resolved without a recorded response gets one then.

Revision ID: 0003_ticket_queue
Revises: 0002_logins_rls
Create Date: 2026-11-25
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = "0003_ticket_queue"
down_revision = "0002_logins_rls"
branch_labels = None
depends_on = None

TICKET_STATUS = postgresql.ENUM(name="ticket_status", create_type=False)
ACTOR_TYPE = postgresql.ENUM(name="actor_type", create_type=False)

SEARCH = """
CREATE FUNCTION ticket_search_document(p_ticket_id integer, p_number text, p_title text, p_description text)
RETURNS tsvector LANGUAGE sql STABLE AS $$
    SELECT setweight(to_tsvector('simple', coalesce(p_number, '')), 'A')
        || setweight(to_tsvector('english', coalesce(p_title, '')), 'A')
        || setweight(to_tsvector('english', coalesce(p_description, '')), 'B')
        || setweight(to_tsvector('english', coalesce(
               (SELECT string_agg(body, ' ') FROM ticket_comments WHERE ticket_id = p_ticket_id), '')), 'C')
$$;

CREATE FUNCTION ticket_search_refresh() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.search_vector := ticket_search_document(NEW.ticket_id, NEW.ticket_number, NEW.title, NEW.description);
    RETURN NEW;
END;
$$;

CREATE TRIGGER trg_ticket_search
    BEFORE INSERT OR UPDATE OF ticket_number, title, description ON support_tickets
    FOR EACH ROW EXECUTE FUNCTION ticket_search_refresh();

-- SECURITY DEFINER: a contact's reply refreshes its ticket's search text, a column contacts
-- may not write themselves.
CREATE FUNCTION ticket_comment_search_refresh() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    affected integer := COALESCE(NEW.ticket_id, OLD.ticket_id);
BEGIN
    UPDATE support_tickets t
       SET search_vector = ticket_search_document(t.ticket_id, t.ticket_number, t.title, t.description)
     WHERE t.ticket_id = affected;
    RETURN NULL;
END;
$$;

CREATE TRIGGER trg_ticket_comment_search
    AFTER INSERT OR UPDATE OF body OR DELETE ON ticket_comments
    FOR EACH ROW EXECUTE FUNCTION ticket_comment_search_refresh();

CREATE OR REPLACE FUNCTION set_first_response() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.first_response_at IS NULL AND NEW.status IN ('waiting_customer', 'resolved')
       AND OLD.status IS DISTINCT FROM NEW.status THEN
        NEW.first_response_at := CURRENT_TIMESTAMP;
    END IF;
    RETURN NEW;
END;
$$;
"""

SEED_FIRST_RESPONSE = """
CREATE OR REPLACE FUNCTION set_first_response() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.status = 'open' AND NEW.status <> 'open' AND NEW.first_response_at IS NULL THEN
        NEW.first_response_at := CURRENT_TIMESTAMP;
    END IF;
    RETURN NEW;
END;
$$;
"""

# Tickets that exist already: a first log entry, and due times from their contract (no pauses known).
BACKFILL = """
INSERT INTO ticket_status_changes (ticket_id, from_status, to_status, changed_at, actor_type)
SELECT ticket_id, NULL, 'open', created_at, 'system' FROM support_tickets;
INSERT INTO ticket_status_changes (ticket_id, from_status, to_status, changed_at, actor_type)
SELECT ticket_id, 'open', status, COALESCE(closed_at, resolved_at, first_response_at, assigned_at, created_at),
       'system'
FROM support_tickets WHERE status <> 'open';
UPDATE support_tickets t
   SET response_due_at = t.created_at + make_interval(hours => c.response_time_hours),
       resolution_due_at = t.created_at + make_interval(hours => c.resolution_time_hours)
  FROM service_contracts c WHERE c.contract_id = t.contract_id;
UPDATE support_tickets
   SET sla_due_at = CASE WHEN status IN ('resolved', 'closed', 'waiting_customer') THEN NULL
                         WHEN first_response_at IS NULL THEN LEAST(response_due_at, resolution_due_at)
                         ELSE resolution_due_at END,
       last_activity_at = COALESCE(closed_at, resolved_at, first_response_at, assigned_at, created_at),
       search_vector = ticket_search_document(ticket_id, ticket_number, title, description);
UPDATE support_tickets t
   SET sla_at_risk_at = t.sla_due_at - make_interval(secs => 0.25 * 3600 *
           CASE WHEN t.first_response_at IS NULL AND t.sla_due_at = t.response_due_at
                THEN c.response_time_hours ELSE c.resolution_time_hours END)
  FROM service_contracts c WHERE c.contract_id = t.contract_id AND t.sla_due_at IS NOT NULL;
"""


def upgrade():
    op.create_table(
        "ticket_status_changes",
        sa.Column("change_id", sa.BigInteger(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("from_status", TICKET_STATUS, nullable=True),
        sa.Column("to_status", TICKET_STATUS, nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("actor_type", ACTOR_TYPE, nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["ticket_id"], ["support_tickets.ticket_id"],
                                name=op.f("ticket_status_changes_ticket_id_fkey"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("change_id", name=op.f("ticket_status_changes_pkey")),
    )
    op.create_index("idx_status_changes_ticket", "ticket_status_changes", ["ticket_id", "changed_at"])
    for column in ("response_due_at", "resolution_due_at", "sla_due_at", "sla_at_risk_at"):
        op.add_column("support_tickets", sa.Column(column, sa.DateTime(timezone=True), nullable=True))
    op.add_column("support_tickets", sa.Column("last_activity_at", sa.DateTime(timezone=True),
                                               server_default=sa.text("now()"), nullable=False))
    op.add_column("support_tickets", sa.Column("version", sa.Integer(), server_default="1", nullable=False))
    op.add_column("support_tickets", sa.Column("search_vector", postgresql.TSVECTOR(), nullable=True))
    op.execute(SEARCH)
    op.execute(BACKFILL)
    op.create_index("idx_tickets_queue", "support_tickets", ["sla_due_at", "ticket_id"],
                    postgresql_where=sa.text("status <> 'closed'"))
    op.create_index("idx_tickets_open_activity", "support_tickets", ["last_activity_at"],
                    postgresql_where=sa.text("status <> 'closed'"))
    op.create_index("idx_tickets_search", "support_tickets", ["search_vector"], postgresql_using="gin")

    # Row-level security for contacts, as for every table under a ticket (see 0002).
    of_customer = ("EXISTS (SELECT 1 FROM support_tickets t WHERE t.ticket_id = ticket_status_changes.ticket_id"
                   " AND t.customer_id = portal_customer_id())")
    op.execute("ALTER TABLE ticket_status_changes ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE ticket_status_changes FORCE ROW LEVEL SECURITY")
    op.execute("CREATE POLICY staff_all ON ticket_status_changes USING (current_user <> 'portal_contact')"
               " WITH CHECK (current_user <> 'portal_contact')")
    op.execute(f"CREATE POLICY contact_read ON ticket_status_changes FOR SELECT TO portal_contact USING ({of_customer})")
    op.execute("CREATE POLICY contact_insert ON ticket_status_changes FOR INSERT TO portal_contact WITH CHECK"
               f" (actor_type = 'contact' AND actor_id = portal_contact_id() AND {of_customer})")
    op.execute("GRANT SELECT, INSERT ON ticket_status_changes TO portal_contact")
    op.execute("GRANT USAGE ON SEQUENCE ticket_status_changes_change_id_seq TO portal_contact")
    # A contact's reply moves the SLA clock and the version of its ticket.
    op.execute("GRANT INSERT (last_activity_at, response_due_at, resolution_due_at, sla_due_at, sla_at_risk_at,"
               " version), UPDATE (last_activity_at, response_due_at, resolution_due_at, sla_due_at, sla_at_risk_at,"
               " version) ON support_tickets TO portal_contact")


def downgrade():
    op.execute("REVOKE ALL ON ticket_status_changes FROM portal_contact")
    op.execute("REVOKE ALL ON SEQUENCE ticket_status_changes_change_id_seq FROM portal_contact")
    op.execute("REVOKE INSERT (last_activity_at, response_due_at, resolution_due_at, sla_due_at, sla_at_risk_at,"
               " version), UPDATE (last_activity_at, response_due_at, resolution_due_at, sla_due_at, sla_at_risk_at,"
               " version) ON support_tickets FROM portal_contact")
    op.execute("DROP TRIGGER trg_ticket_comment_search ON ticket_comments")
    op.execute("DROP TRIGGER trg_ticket_search ON support_tickets")
    op.drop_index("idx_tickets_search", table_name="support_tickets")
    op.drop_index("idx_tickets_open_activity", table_name="support_tickets")
    op.drop_index("idx_tickets_queue", table_name="support_tickets")
    for column in ("search_vector", "version", "last_activity_at", "sla_at_risk_at", "sla_due_at",
                   "resolution_due_at", "response_due_at"):
        op.drop_column("support_tickets", column)
    op.execute("DROP FUNCTION ticket_comment_search_refresh()")
    op.execute("DROP FUNCTION ticket_search_refresh()")
    op.execute("DROP FUNCTION ticket_search_document(integer, text, text, text)")
    op.execute(SEED_FIRST_RESPONSE)
    op.drop_index("idx_status_changes_ticket", table_name="ticket_status_changes")
    op.drop_table("ticket_status_changes")
