"""The customer portal: ticket attachments and the satisfaction comment.

- ticket_attachments: a file a contact or employee attached to a ticket (or to one reply). The
  bytes live outside static/ under `storage_name` (random); the row keeps the name the user gave
  it, the type found from the content, the size and a sha256. Contacts read the attachments of
  their customer's tickets (an attachment of an internal note never) and add their own.
- support_tickets.satisfaction_comment: what the contact wrote with the 1-5 rating.
- Contacts may name (as NULL) the columns the ORM writes in every new ticket and comment; the
  insert policy of support_tickets now also requires a contact's new ticket to be open and empty
  of staff fields.
- support_tickets.public_search_vector (generated from title and description, GIN-indexed as
  idx_tickets_public_search): what a contact's search looks in. Never the conversation: the staff
  search vector also holds internal notes. Stored, because under row-level security PostgreSQL
  may not use an index for a non-leakproof operator like @@ and must match row by row; matching a
  stored vector is cheap, computing one per row is not.

Revision ID: 0007_customer_portal
Revises: 0006_queue_indexes
Create Date: 2026-11-25
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = "0007_customer_portal"
down_revision = "0006_queue_indexes"
branch_labels = None
depends_on = None

OF_CUSTOMER = ("EXISTS (SELECT 1 FROM support_tickets t WHERE t.ticket_id = ticket_attachments.ticket_id"
               " AND t.customer_id = portal_customer_id())")
NOT_INTERNAL = ("(comment_id IS NULL OR EXISTS (SELECT 1 FROM ticket_comments c"
                " WHERE c.comment_id = ticket_attachments.comment_id AND NOT c.is_internal"
                " AND c.ticket_id = ticket_attachments.ticket_id))")


# Written as PostgreSQL prints it back, so that autogenerate sees no difference.
PUBLIC_DOCUMENT = "to_tsvector('english'::regconfig, (((title)::text || ' '::text) || description))"


OPENED_BY_CONTACT = "customer_id = portal_customer_id() AND contact_id = portal_contact_id()"
OWN_CONTRACT = ("(contract_id IS NULL OR EXISTS (SELECT 1 FROM service_contracts k"
                " WHERE k.contract_id = support_tickets.contract_id AND k.customer_id = portal_customer_id()))")
EMPTY_ON_OPEN = ("assigned_employee_id", "assigned_at", "first_response_at", "resolved_at", "closed_at",
                 "estimated_hours", "resolution_notes", "customer_satisfaction", "satisfaction_comment")


# A sponsor's decision emails the project's manager, but a contact may read no employee's email:
# this returns that one address, only for a project of the contact's own customer, and only
# contacts may call it (staff read employees directly).
MANAGER_EMAIL = """
CREATE FUNCTION portal_project_manager_email(p_project_id integer) RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT e.email FROM projects p JOIN employees e ON e.employee_id = p.project_manager_id
    WHERE p.project_id = p_project_id AND p.customer_id = portal_customer_id()
$$;
REVOKE EXECUTE ON FUNCTION portal_project_manager_email(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION portal_project_manager_email(integer) TO portal_contact;
"""

# Only the contact who opened a ticket rates it, once (row-level security cannot tell columns apart).
RATING_GUARD = """
CREATE FUNCTION support_ticket_rating_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_user = 'portal_contact'
       AND (NEW.customer_satisfaction IS DISTINCT FROM OLD.customer_satisfaction
            OR NEW.satisfaction_comment IS DISTINCT FROM OLD.satisfaction_comment)
       AND (OLD.contact_id IS DISTINCT FROM portal_contact_id() OR OLD.customer_satisfaction IS NOT NULL) THEN
        RAISE EXCEPTION 'only the contact who opened a ticket rates it, once' USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER trg_ticket_rating_guard BEFORE UPDATE OF customer_satisfaction, satisfaction_comment
    ON support_tickets FOR EACH ROW EXECUTE FUNCTION support_ticket_rating_guard();
"""

# Every column of support_tickets but search_vector, as `cols` for `action`.
READABLE_TICKET_COLUMNS = """
DO $$
DECLARE cols text;
BEGIN
    SELECT string_agg(quote_ident(column_name), ', ' ORDER BY ordinal_position) INTO cols
    FROM information_schema.columns
    WHERE table_schema = current_schema() AND table_name = 'support_tickets' AND column_name <> 'search_vector';
    {action};
END $$;
"""


def upgrade():
    op.add_column("support_tickets", sa.Column("satisfaction_comment", sa.Text(), nullable=True))
    op.create_table(
        "ticket_attachments",
        sa.Column("attachment_id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("comment_id", sa.Integer(), nullable=True),
        sa.Column("uploaded_by_contact_id", sa.Integer(), nullable=True),
        sa.Column("uploaded_by_employee_id", sa.Integer(), nullable=True),
        sa.Column("file_name", sa.String(length=255), nullable=False),
        sa.Column("content_type", sa.String(length=100), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("storage_name", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("num_nonnulls(uploaded_by_contact_id, uploaded_by_employee_id) = 1",
                           name="chk_attachment_uploader"),
        sa.CheckConstraint("size_bytes > 0 AND size_bytes <= 10485760", name="chk_attachment_size"),
        sa.CheckConstraint("file_name = btrim(file_name) AND file_name <> ''", name="chk_attachment_file_name"),
        sa.ForeignKeyConstraint(["ticket_id"], ["support_tickets.ticket_id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["comment_id"], ["ticket_comments.comment_id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["uploaded_by_contact_id"], ["contacts.contact_id"]),
        sa.ForeignKeyConstraint(["uploaded_by_employee_id"], ["employees.employee_id"]),
        sa.PrimaryKeyConstraint("attachment_id"),
        sa.UniqueConstraint("storage_name"),
    )
    op.create_index("idx_attachments_ticket", "ticket_attachments", ["ticket_id", "created_at"])
    # Contacts search their tickets by title and description only: the staff search vector also
    # holds internal notes, which a contact's search must not be able to probe.
    op.add_column("support_tickets", sa.Column(
        "public_search_vector", postgresql.TSVECTOR(), sa.Computed(PUBLIC_DOCUMENT, persisted=True), nullable=True))
    op.create_index("idx_tickets_public_search", "support_tickets", ["public_search_vector"], postgresql_using="gin")
    # A contact's list: one company's tickets, latest activity first, counted by status and submitter
    # from the index alone (docs/performance.md, "The customer portal").
    op.create_index("idx_tickets_customer_activity", "support_tickets",
                    ["customer_id", sa.text("last_activity_at DESC"), sa.text("ticket_id DESC")],
                    postgresql_include=["status", "contact_id"])
    op.execute("ALTER TABLE ticket_attachments ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE ticket_attachments FORCE ROW LEVEL SECURITY")
    op.execute("CREATE POLICY staff_all ON ticket_attachments USING (current_user <> 'portal_contact')"
               " WITH CHECK (current_user <> 'portal_contact')")
    op.execute(f"CREATE POLICY contact_read ON ticket_attachments FOR SELECT TO portal_contact"
               f" USING ({OF_CUSTOMER} AND {NOT_INTERNAL})")
    op.execute(f"CREATE POLICY contact_insert ON ticket_attachments FOR INSERT TO portal_contact WITH CHECK"
               f" (uploaded_by_contact_id = portal_contact_id() AND uploaded_by_employee_id IS NULL"
               f" AND {OF_CUSTOMER} AND {NOT_INTERNAL})")
    op.execute("GRANT SELECT, INSERT ON ticket_attachments TO portal_contact")
    op.execute("GRANT USAGE ON SEQUENCE ticket_attachments_attachment_id_seq TO portal_contact")
    op.execute("GRANT UPDATE (satisfaction_comment) ON support_tickets TO portal_contact")
    # The ORM names every column of a new row, NULL where it has no value: contacts may name these
    # columns in an INSERT, and the policies make sure a contact's new row leaves them empty.
    op.execute(f"GRANT INSERT ({', '.join(EMPTY_ON_OPEN)}, search_vector) ON support_tickets TO portal_contact")
    op.execute("GRANT INSERT (author_employee_id) ON ticket_comments TO portal_contact")
    op.execute(MANAGER_EMAIL)
    op.execute(RATING_GUARD)
    op.execute("DROP POLICY contact_insert ON support_tickets")
    op.execute("CREATE POLICY contact_insert ON support_tickets FOR INSERT TO portal_contact WITH CHECK"
               f" ({OPENED_BY_CONTACT} AND {OWN_CONTRACT} AND status = 'open'"
               f" AND {' AND '.join(f'{c} IS NULL' for c in EMPTY_ON_OPEN)})")
    # The staff search vector holds the words of internal notes: contacts read every other column.
    op.execute(READABLE_TICKET_COLUMNS.format(action="REVOKE SELECT ON support_tickets FROM portal_contact; "
                                                     "EXECUTE format('GRANT SELECT (%s) ON support_tickets"
                                                     " TO portal_contact', cols)"))


def downgrade():
    op.execute(READABLE_TICKET_COLUMNS.format(action="EXECUTE format('REVOKE SELECT (%s) ON support_tickets"
                                                     " FROM portal_contact', cols); "
                                                     "GRANT SELECT ON support_tickets TO portal_contact"))
    op.execute("DROP TRIGGER trg_ticket_rating_guard ON support_tickets")
    op.execute("DROP FUNCTION support_ticket_rating_guard()")
    op.execute("DROP FUNCTION portal_project_manager_email(integer)")
    op.execute("DROP POLICY contact_insert ON support_tickets")
    op.execute(f"CREATE POLICY contact_insert ON support_tickets FOR INSERT TO portal_contact WITH CHECK"
               f" ({OPENED_BY_CONTACT})")
    op.execute("REVOKE INSERT (author_employee_id) ON ticket_comments FROM portal_contact")
    op.execute(f"REVOKE INSERT ({', '.join(EMPTY_ON_OPEN)}, search_vector) ON support_tickets FROM portal_contact")
    op.execute("REVOKE UPDATE (satisfaction_comment) ON support_tickets FROM portal_contact")
    op.drop_index("idx_tickets_customer_activity", table_name="support_tickets")
    op.drop_index("idx_tickets_public_search", table_name="support_tickets")
    op.drop_column("support_tickets", "public_search_vector")
    op.drop_table("ticket_attachments")  # its policies and grants go with it
    op.drop_column("support_tickets", "satisfaction_comment")
