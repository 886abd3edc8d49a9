"""Waiting on the customer is no response by itself: only a public reply is.

Migration 0003 made set_first_response record a first response when a ticket reached
waiting_customer or resolved without one. A ticket put on hold without a word to the customer
then read "answered, Met" while its conversation said "No replies yet". Moving to waiting now
posts the question as a public reply (services/tickets.change_status), which is the response;
the trigger keeps its safety net for resolving only (the resolution notes reach the customer).

Revision ID: 0011_waiting_no_response
Revises: 0010_password_reset_throttle
Create Date: 2026-11-30
"""
from alembic import op

revision = "0011_waiting_no_response"
down_revision = "0010_password_reset_throttle"
branch_labels = None
depends_on = None

RESOLVED_ONLY = """
CREATE OR REPLACE FUNCTION set_first_response() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.first_response_at IS NULL AND NEW.status = 'resolved'
       AND OLD.status IS DISTINCT FROM NEW.status THEN
        NEW.first_response_at := CURRENT_TIMESTAMP;
    END IF;
    RETURN NEW;
END;
$$;
"""

WAITING_OR_RESOLVED = """
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


def upgrade():
    op.execute(RESOLVED_ONLY)


def downgrade():
    op.execute(WAITING_OR_RESOLVED)
