"""Two-factor seeds encrypted at rest.

`accounts.totp_secret` held each staff member's authenticator seed in clear: anyone with a copy
of the database (a dump, a backup, a replica) could mint their codes. It becomes an
`EncryptedText` column (portal/services/secrets_at_rest.py): a Fernet token under the newest key
of ENCRYPTION_KEYS, in a `text` column (a token is longer than the 64 characters of before).

The existing seeds are encrypted here with the app's own keys, read as the app reads them
(ENCRYPTION_KEYS, or on the embedded database the instance folder's key file): an operator sets
ENCRYPTION_KEYS before `flask db upgrade` (without it, and with seeds to encrypt, the upgrade
stops with a message and changes nothing). The downgrade decrypts them back, which needs a key
that opens every one of them.

Revision ID: 0016_secrets_at_rest
Revises: 0011_waiting_no_response
Create Date: 2026-12-01
"""
from alembic import op
import sqlalchemy as sa

from portal.services.secrets_at_rest import decrypt_existing, encrypt_existing

revision = "0016_secrets_at_rest"
down_revision = "0011_waiting_no_response"
branch_labels = None
depends_on = None


def upgrade():
    op.alter_column("accounts", "totp_secret", type_=sa.Text(), existing_type=sa.String(length=64),
                    existing_nullable=True)
    encrypt_existing(op.get_bind(), "accounts", "totp_secret", key="account_id")


def downgrade():
    decrypt_existing(op.get_bind(), "accounts", "totp_secret", key="account_id")
    op.alter_column("accounts", "totp_secret", type_=sa.String(length=64), existing_type=sa.Text(),
                    existing_nullable=True)
