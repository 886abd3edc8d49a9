"""Secrets encrypted at rest, on databases that really commit: no two-factor seed in a dump, sign-in
with two-factor before and after `flask rotate-keys`, a wrong key is a clear error (never a 500),
the migration encrypts the seeds already there and its downgrade decrypts them."""

from __future__ import annotations

import logging
import os
import re
import stat
import subprocess

import psycopg
import pyotp
import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet, InvalidToken
from flask_migrate import downgrade, upgrade

from portal.config import ConfigurationError
from portal.extensions import db
from portal.models import Account
from portal.services import backups, secrets_at_rest
from portal.services.secrets_at_rest import EncryptedText, Keyring, SecretUnreadable, encrypted_columns, rotate_all
from tests.operations_support import (
    committed_database,
    dispose,
    enrol_two_factor,
    forget_last_code,
    make_app,
    new_key,
    raw_seed,
    sign_in_with_two_factor,
    staff_member,
)

K1, K2, STRANGER = new_key(), new_key(), new_key()


@pytest.fixture(scope="module")
def two_factor_db(pg, tmp_path_factory):
    """A committed database with an admin who has two-factor sign-in on (under K1)."""
    with committed_database(pg, "techserv_secrets", K1, tmp_path_factory.mktemp("secrets")) as (app, name):
        email = staff_member(app)
        seed, codes = enrol_two_factor(app, email)
        yield app, name, email, seed, codes


def _dump(pg, name: str) -> str:
    with psycopg.connect(pg.libpq_url_for(name)) as connection:
        major = connection.info.server_version // 10000
    tools = backups.pg_tools(major)
    return subprocess.run([tools.path("pg_dump"), "--data-only", "--dbname", pg.libpq_url_for(name)],
                          capture_output=True, text=True, check=True).stdout


def test_a_dump_of_the_database_holds_no_two_factor_seed(pg, two_factor_db):
    app, name, email, seed, codes = two_factor_db
    dump = _dump(pg, name)
    assert "COPY public.accounts" in dump and email in dump  # the row is there ...
    assert seed not in dump and seed.lower() not in dump  # ... its seed is not
    stored = raw_seed(app, email)
    assert stored.startswith("gAAAAA") and stored in dump  # a Fernet token instead
    assert Fernet(K1).decrypt(stored.encode()).decode() == seed
    for code in codes:  # recovery codes stay hashes
        assert code not in dump and code.replace("-", "") not in dump


def test_every_encrypted_column_is_found_from_the_models():
    assert "accounts.totp_secret" in [column.name for column in encrypted_columns(db.metadatas[None])]


def test_a_dump_of_the_database_holds_no_webhook_signing_secret(pg, two_factor_db):
    from datetime import UTC, datetime, timedelta

    from portal.models.api import WebhookSubscription

    app, name, *_ = two_factor_db
    current, previous = "whsec_" + "c" * 43, "whsec_" + "p" * 43
    with app.app_context():
        db.session.add(WebhookSubscription(url="https://hooks.example.com/portal", event_types=["ticket.created"],
                                           secret=current, previous_secret=previous,
                                           previous_secret_expires_at=datetime.now(UTC) + timedelta(hours=1)))
        db.session.commit()
        db.session.remove()
    dump = _dump(pg, name)
    assert "https://hooks.example.com/portal" in dump  # the row is there ...
    assert current not in dump and previous not in dump  # ... its secrets are not


SECRET_LIKE = re.compile(r"secret|password|passphrase|private_key|api_key|token")
HASHED = re.compile(r"_(hash|hashes|digest)$")
NOT_A_SECRET = re.compile(r"_(at|id|count|version)$")  # password_changed_at, token_id: about a secret, not one


def test_every_column_holding_a_secret_is_encrypted_or_a_hash():
    """A secret the app reads back is EncryptedText; one it only checks is a hash. A new column named like a
    secret (a webhook signing secret, a mailbox password) fails here until it is one or the other."""
    plain = [f"{table.name}.{column.name}" for table in db.metadatas[None].sorted_tables for column in table.columns
             if SECRET_LIKE.search(column.name) and not HASHED.search(column.name)
             and not NOT_A_SECRET.search(column.name)
             and not isinstance(column.type, EncryptedText)]
    assert plain == [], "declare these with EncryptedText (read back) or store a hash (only checked)"


def test_two_factor_sign_in_works_before_and_after_rotate_keys(pg, two_factor_db):
    app, name, email, seed, _ = two_factor_db
    forget_last_code(app, email)
    _, answer = sign_in_with_two_factor(app, email, pyotp.TOTP(seed).now())
    assert answer.status_code == 302 and answer.headers["Location"].endswith("/staff/")

    rotating = make_app(pg, name, f"{K2},{K1}")  # the new key first, the old one still there
    try:
        result = rotating.test_cli_runner().invoke(args=["rotate-keys"])
        assert result.exit_code == 0, result.output
        assert "accounts.totp_secret: 1 value re-encrypted" in result.output
        assert secrets_at_rest.key_id(K2) in result.output and secrets_at_rest.key_id(K1) in result.output
    finally:
        dispose(rotating)
    stored = raw_seed(app, email)
    assert Fernet(K2).decrypt(stored.encode()).decode() == seed
    with pytest.raises(InvalidToken):
        Fernet(K1).decrypt(stored.encode())

    only_new = make_app(pg, name, K2)  # the old key removed from ENCRYPTION_KEYS
    try:
        forget_last_code(only_new, email)
        browser, answer = sign_in_with_two_factor(only_new, email, pyotp.TOTP(seed).now())
        assert answer.status_code == 302 and answer.headers["Location"].endswith("/staff/")
        assert browser.get("/staff/").status_code == 200
    finally:
        dispose(only_new)


def test_a_wrong_key_is_a_clear_error_at_sign_in_not_a_500(pg, two_factor_db, caplog):
    app, name, email, seed, codes = two_factor_db
    wrong = make_app(pg, name, STRANGER)
    try:
        forget_last_code(wrong, email)
        with caplog.at_level(logging.ERROR, logger="portal.services.auth"):
            _, answer = sign_in_with_two_factor(wrong, email, pyotp.TOTP(seed).now())
        page = answer.get_data(as_text=True)
        assert answer.status_code == 503
        assert "Two-factor codes cannot be checked right now" in page and "ENCRYPTION_KEYS" in page
        assert "A recovery code still works" in page
        assert any("ENCRYPTION_KEYS" in record.getMessage() for record in caplog.records)

        # A recovery code is a hash: it still signs in, and pages that do not need the seed work.
        browser, answer = sign_in_with_two_factor(wrong, email, codes[0])
        assert answer.status_code == 302 and answer.headers["Location"].endswith("/staff/")
        assert browser.get("/staff/").status_code == 200
        assert browser.get("/account/two-factor").status_code == 200  # "two-factor is on": no seed read

        ready = wrong.test_client().get("/readyz")
        assert ready.status_code == 503
        assert "ENCRYPTION_KEYS" in ready.get_json()["checks"]["encryption"]
    finally:
        dispose(wrong)


def test_reading_a_seed_with_the_wrong_key_raises_naming_the_setting(pg, two_factor_db):
    app, name, email, _, _ = two_factor_db
    wrong = make_app(pg, name, STRANGER)
    try:
        with wrong.app_context():
            account = db.session.scalar(sa.select(Account).where(Account.email == email))
            assert account.totp_enabled  # the row loads: the seed is loaded only where it is read
            with pytest.raises(SecretUnreadable, match="ENCRYPTION_KEYS"):
                account.totp_secret  # noqa: B018
            db.session.remove()
    finally:
        dispose(wrong)


def test_production_without_encryption_keys_refuses_to_store_a_seed_with_a_clear_page(pg, tmp_path):
    """With DATABASE_URL the portal makes no key of its own: enrolling answers 503 naming the setting."""
    with committed_database(pg, "techserv_nokeys", K1, tmp_path) as (app, name):
        email = staff_member(app)
        production = make_app(pg, name, None, tmp_path, DATABASE_URL=pg.libpq_url_for(name))
        try:
            from tests.conftest import Browser

            browser = Browser(production.test_client())
            assert browser.sign_in(email).status_code == 302
            page = browser.get("/account/two-factor")
            assert page.status_code == 503
            assert "ENCRYPTION_KEYS" in page.get_data(as_text=True)
            assert raw_seed(production, email) is None  # nothing stored
            assert "ENCRYPTION_KEYS is not set" in production.test_client().get("/readyz").get_json()["checks"]["encryption"]
        finally:
            dispose(production)


def test_rotate_keys_covers_a_new_encrypted_column_without_changing_the_command(pg, tmp_path):
    """A column another feature adds with EncryptedText (here a stand-in for webhook signing secrets)."""
    with committed_database(pg, "techserv_rotate", K1, tmp_path) as (app, name):
        metadata = sa.MetaData()
        sa.Table("accounts", metadata, sa.Column("account_id", sa.Integer, primary_key=True),
                 sa.Column("totp_secret", EncryptedText()))
        hooks = sa.Table("signing_secrets_for_test", metadata, sa.Column("id", sa.Integer, primary_key=True),
                         sa.Column("secret", EncryptedText()))
        assert [c.name for c in encrypted_columns(metadata)] == ["accounts.totp_secret", "signing_secrets_for_test.secret"]
        with app.app_context():
            connection = db.session.connection()
            hooks.create(connection)
            connection.execute(hooks.insert(), [{"id": 1, "secret": "whsec-one"}, {"id": 2, "secret": "whsec-two"},
                                                {"id": 3, "secret": None}])
            db.session.commit()
            raw = db.session.scalars(sa.text("SELECT secret FROM signing_secrets_for_test WHERE secret IS NOT NULL")).all()
            assert all(Fernet(K1).decrypt(token.encode()) for token in raw)
            assert not any("whsec" in token for token in raw)
            db.session.remove()
        rotating = make_app(pg, name, f"{K2},{K1}")
        try:
            with rotating.app_context():
                counts = rotate_all(db.session.connection(), secrets_at_rest.keyring_of(rotating), metadata)
                db.session.commit()
                assert counts == {"accounts.totp_secret": 0, "signing_secrets_for_test.secret": 2}
                raw = db.session.scalars(sa.text("SELECT secret FROM signing_secrets_for_test"
                                                 " WHERE secret IS NOT NULL ORDER BY id")).all()
                assert [Fernet(K2).decrypt(token.encode()).decode() for token in raw] == ["whsec-one", "whsec-two"]
                assert db.session.execute(hooks.select().order_by(hooks.c.id)).all() == [
                    (1, "whsec-one"), (2, "whsec-two"), (3, None)]
                db.session.remove()
        finally:
            dispose(rotating)


def test_rotate_keys_stops_without_changing_anything_when_a_value_does_not_decrypt(pg, two_factor_db):
    app, name, email, _, _ = two_factor_db
    before = raw_seed(app, email)
    stranger = make_app(pg, name, f"{new_key()},{STRANGER}")
    try:
        result = stranger.test_cli_runner().invoke(args=["rotate-keys"])
        assert result.exit_code == 1
        assert "cannot be decrypted with any key in ENCRYPTION_KEYS" in result.output
        assert "Nothing was changed" in result.output
    finally:
        dispose(stranger)
    assert raw_seed(app, email) == before


def test_the_migration_encrypts_the_seeds_there_and_its_downgrade_decrypts_them(pg, tmp_path, caplog):
    name = pg.create_database("techserv_encrypt_migration")
    app = make_app(pg, name, K1, tmp_path)
    production_without_key = make_app(pg, name, None, tmp_path, DATABASE_URL=pg.libpq_url_for(name))
    seed = pyotp.random_base32()
    try:
        with app.app_context():
            upgrade(revision="0011_waiting_no_response")
            db.session.execute(sa.text(
                "INSERT INTO employees (employee_number, first_name, last_name, email, role, hire_date,"
                " hourly_rate_internal, hourly_rate_client) VALUES ('M0001', 'Mia', 'Grant', 'mia@techserv.example',"
                " 'admin', '2020-01-01', 50, 100)"))
            db.session.execute(sa.text(
                "INSERT INTO accounts (email, employee_id, totp_secret) SELECT email, employee_id, :seed FROM employees"),
                {"seed": seed})
            db.session.commit()
            db.session.remove()
        with production_without_key.app_context():  # the seeds need a key: no ENCRYPTION_KEYS, no upgrade
            with caplog.at_level(logging.ERROR, logger="flask_migrate"), pytest.raises(SystemExit):
                upgrade()  # `flask db upgrade` prints "Error: ENCRYPTION_KEYS is not set. ..." and exits 1
            db.session.remove()
        assert any("Error: ENCRYPTION_KEYS is not set" in record.getMessage() for record in caplog.records)
        assert raw_seed(app, "mia@techserv.example") == seed
        with app.app_context():
            assert db.session.scalar(sa.text("SELECT version_num FROM alembic_version")) == "0011_waiting_no_response"
            db.session.remove()
            upgrade()
        stored = raw_seed(app, "mia@techserv.example")
        assert stored != seed and Fernet(K1).decrypt(stored.encode()).decode() == seed
        with app.app_context():
            downgrade(revision="0011_waiting_no_response")
            db.session.remove()
        assert raw_seed(app, "mia@techserv.example") == seed
    finally:
        dispose(app)
        dispose(production_without_key)
        pg.drop_database(name)


def test_a_malformed_key_stops_the_app_at_start_naming_the_setting(pg):
    with pytest.raises(ConfigurationError, match="key 2 of ENCRYPTION_KEYS is not a Fernet key"):
        make_app(pg, "postgres", f"{K1},not-a-key")


def test_the_embedded_database_makes_its_key_in_the_instance_folder_once(tmp_path):
    first = Keyring.from_settings(None, instance_path=str(tmp_path), embedded=True)
    second = Keyring.from_settings(None, instance_path=str(tmp_path), embedded=True)
    assert first.existing_key_ids() == []  # asking which keys there are (a restore's check) makes none
    assert not (tmp_path / "encryption_keys").exists()  # made when a secret is first written, not before
    token = first.encrypt("JBSWY3DPEHPK3PXP")
    assert stat.S_IMODE(os.stat(tmp_path / "encryption_keys").st_mode) == 0o600
    assert second.decrypt(token) == "JBSWY3DPEHPK3PXP"  # the same key, read from the file
    new_id = second.add_new_key()
    assert second.key_ids[0] == new_id and len(second.key_ids) == 2
    rotated = second.rotate(token)
    assert first.decrypt(rotated) == "JBSWY3DPEHPK3PXP"  # the other process reads the file again
    production = Keyring.from_settings(None, instance_path=str(tmp_path), embedded=False)
    with pytest.raises(secrets_at_rest.NoEncryptionKeys, match="ENCRYPTION_KEYS is not set"):
        production.encrypt("x")
