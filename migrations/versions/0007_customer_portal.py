"""The customer portal: ticket attachments and the satisfaction comment.

- ticket_attachments: a file a contact or employee attached to a ticket (or to one reply). The
  bytes live outside static/ under `storage_name` (random); the row keeps the name the user gave
  it, the type found from the content, the size and a sha256. Contacts read the attachments of
  their customer's tickets (an attachment of an internal note never) and add their own.
- support_tickets.satisfaction_comment: what the contact wrote with the 1-5 rating.

Revision ID: 0007_customer_portal
Revises: 0006_queue_indexes
Create Date: 2026-11-25
"""
from alembic import op
import sqlalchemy as sa

revision = "0007_customer_portal"
down_revision = "0006_queue_indexes"
branch_labels = None
depends_on = None

OF_CUSTOMER = ("EXISTS (SELECT 1 FROM support_tickets t WHERE t.ticket_id = ticket_attachments.ticket_id"
               " AND t.customer_id = portal_customer_id())")
NOT_INTERNAL = ("(comment_id IS NULL OR EXISTS (SELECT 1 FROM ticket_comments c"
                " WHERE c.comment_id = ticket_attachments.comment_id AND NOT c.is_internal))")


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


def downgrade():
    op.execute("REVOKE UPDATE (satisfaction_comment) ON support_tickets FROM portal_contact")
    op.drop_table("ticket_attachments")  # its policies and grants go with it
    op.drop_column("support_tickets", "satisfaction_comment")
