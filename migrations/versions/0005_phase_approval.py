"""Phase approval requests and rejections (DESIGN.md "Projects and phases").

Revision ID: 0005_phase_approval
Revises: 0004_time_approval
Create Date: 2026-11-25
"""
from alembic import op
import sqlalchemy as sa

revision = "0005_phase_approval"
down_revision = "0004_time_approval"
branch_labels = None
depends_on = None

OF_CUSTOMER = ("EXISTS (SELECT 1 FROM projects p WHERE p.project_id = project_phases.project_id"
               " AND p.customer_id = portal_customer_id())")


def upgrade():
    op.add_column("project_phases", sa.Column("approval_requested_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("project_phases", sa.Column("rejected_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("project_phases", sa.Column("rejection_reason", sa.Text(), nullable=True))
    op.add_column("project_phases", sa.Column("rejected_by_contact_id", sa.Integer(), nullable=True))
    op.create_foreign_key(op.f("project_phases_rejected_by_contact_id_fkey"), "project_phases", "contacts",
                          ["rejected_by_contact_id"], ["contact_id"])
    # A sponsor's decision is recorded as that sponsor, never as a colleague.
    op.execute("DROP POLICY contact_update ON project_phases")
    op.execute(f"CREATE POLICY contact_update ON project_phases FOR UPDATE TO portal_contact USING ({OF_CUSTOMER})"
               f" WITH CHECK ({OF_CUSTOMER} AND (approved_by_contact_id IS NULL OR approved_by_contact_id ="
               " portal_contact_id()) AND (rejected_by_contact_id IS NULL OR rejected_by_contact_id ="
               " portal_contact_id()))")
    op.execute("GRANT UPDATE (rejected_at, rejection_reason, rejected_by_contact_id) ON project_phases"
               " TO portal_contact")


def downgrade():
    op.execute("REVOKE UPDATE (rejected_at, rejection_reason, rejected_by_contact_id) ON project_phases"
               " FROM portal_contact")
    op.execute("DROP POLICY contact_update ON project_phases")
    op.execute(f"CREATE POLICY contact_update ON project_phases FOR UPDATE TO portal_contact USING ({OF_CUSTOMER})"
               f" WITH CHECK ({OF_CUSTOMER} AND (approved_by_contact_id IS NULL OR approved_by_contact_id ="
               " portal_contact_id()))")
    op.drop_constraint(op.f("project_phases_rejected_by_contact_id_fkey"), "project_phases", type_="foreignkey")
    for column in ("rejected_by_contact_id", "rejection_reason", "rejected_at", "approval_requested_at"):
        op.drop_column("project_phases", column)
