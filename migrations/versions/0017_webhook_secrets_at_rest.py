"""Webhook signing secrets encrypted at rest, like two-factor seeds (0016).

The worker signs every delivery with the subscription's secret (and, while it is rolled, the
previous one), so the secrets must be readable by the app but not by a reader of a dump. Both
columns become `EncryptedText` (a Fernet token in a `text` column) and the existing values are
encrypted with the app's keys, read as 0016 reads them; the downgrade decrypts them back.

Revision ID: 0017_webhook_secrets_at_rest
Revises: 0013_api_and_webhooks
Create Date: 2026-11-30
"""
from alembic import op
import sqlalchemy as sa

from portal.services.secrets_at_rest import decrypt_existing, encrypt_existing

revision = "0017_webhook_secrets_at_rest"
down_revision = "0013_api_and_webhooks"
branch_labels = None
depends_on = None

COLUMNS = ("secret", "previous_secret")


def upgrade():
    for column in COLUMNS:
        op.alter_column("webhook_subscriptions", column, type_=sa.Text(), existing_type=sa.String(length=100))
        encrypt_existing(op.get_bind(), "webhook_subscriptions", column, key="subscription_id")


def downgrade():
    for column in COLUMNS:
        decrypt_existing(op.get_bind(), "webhook_subscriptions", column, key="subscription_id")
        op.alter_column("webhook_subscriptions", column, type_=sa.String(length=100), existing_type=sa.Text())
