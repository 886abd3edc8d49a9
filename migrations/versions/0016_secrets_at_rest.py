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

revision = "0016_secrets_at_rest"
down_revision = "0011_waiting_no_response"
branch_labels = None
depends_on = None


def _keyring():
    from flask import current_app

    from portal.services.secrets_at_rest import keyring_of

    return keyring_of(current_app)


def _seeds(connection):
    return connection.execute(sa.text(
        "SELECT account_id, totp_secret FROM accounts WHERE totp_secret IS NOT NULL ORDER BY account_id FOR UPDATE"
    )).all()


def _store(connection, account_id: int, value: str) -> None:
    connection.execute(sa.text("UPDATE accounts SET totp_secret = :value WHERE account_id = :id"),
                       {"value": value, "id": account_id})


def upgrade():
    op.alter_column("accounts", "totp_secret", type_=sa.Text(), existing_type=sa.String(length=64),
                    existing_nullable=True)
    connection = op.get_bind()
    seeds = _seeds(connection)
    if seeds:
        keyring = _keyring()
        for account_id, seed in seeds:
            _store(connection, account_id, keyring.encrypt(seed))


def downgrade():
    connection = op.get_bind()
    seeds = _seeds(connection)
    if seeds:
        keyring = _keyring()
        for account_id, token in seeds:
            _store(connection, account_id, keyring.decrypt(token, f"accounts.totp_secret of account {account_id}"))
    op.alter_column("accounts", "totp_secret", type_=sa.String(length=64), existing_type=sa.Text(),
                    existing_nullable=True)
