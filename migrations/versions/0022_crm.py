"""Customers get an account manager: the employee who looks after them (the staff customers list
filters by it). Nullable (a prospect may have none yet); a departing employee's customers keep the
link (their history), so the key does not cascade and the list shows who they were.

Revision ID: 0022_crm
Revises: 0014_admin
Create Date: 2026-12-01
"""
from alembic import op
import sqlalchemy as sa

revision = "0022_crm"
down_revision = "0018_billing"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("customers", sa.Column("account_manager_id", sa.Integer(), nullable=True))
    op.create_foreign_key("customers_account_manager_id_fkey", "customers", "employees",
                          ["account_manager_id"], ["employee_id"])
    op.create_index("idx_customers_account_manager", "customers", ["account_manager_id"])


def downgrade():
    op.drop_index("idx_customers_account_manager", table_name="customers")
    op.drop_constraint("customers_account_manager_id_fkey", "customers", type_="foreignkey")
    op.drop_column("customers", "account_manager_id")
