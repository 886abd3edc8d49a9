"""Forgotten-password requests, counted for their throttles (per email and per client address).

"Forgot password" mails a link; without a limit one address could send any number of mails to
anyone. Each request is recorded here (in the database, so every app instance counts the same);
services/auth.request_password_reset refuses, with the same neutral answer and without looking
the email up or sending anything, beyond 5 requests per email or 20 per address in an hour.

Revision ID: 0010_password_reset_throttle
Revises: 0009_narrow_contact_rights
Create Date: 2026-11-30
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = "0010_password_reset_throttle"
down_revision = "0009_narrow_contact_rights"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "password_reset_requests",
        sa.Column("request_id", sa.BigInteger(), nullable=False),
        sa.Column("email", sa.String(length=255), nullable=False),
        sa.Column("ip_address", postgresql.INET(), nullable=True),
        sa.Column("requested_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("throttled", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("request_id", name=op.f("password_reset_requests_pkey")),
    )
    op.create_index("idx_reset_requests_email", "password_reset_requests", ["email", "requested_at"])
    op.create_index("idx_reset_requests_ip", "password_reset_requests", ["ip_address", "requested_at"])


def downgrade():
    op.drop_index("idx_reset_requests_ip", table_name="password_reset_requests")
    op.drop_index("idx_reset_requests_email", table_name="password_reset_requests")
    op.drop_table("password_reset_requests")
