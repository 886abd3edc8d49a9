"""Helpers for the tests of running the portal for real (encryption at rest, backups, readiness):
databases that really commit, apps with chosen keys, and two-factor sign-in through the pages."""

from __future__ import annotations

import re
from contextlib import contextmanager

import pyotp
import sqlalchemy as sa
from cryptography.fernet import Fernet
from flask_migrate import upgrade

from portal import create_app
from portal.extensions import db
from tests.conftest import Browser
from tests.factories import PASSWORD

SECRET = re.compile(r'<span class="secret">([A-Z2-7]+)</span>')
RECOVERY_CODES = re.compile(r"<li>([0-9a-f]{6}-[0-9a-f]{6})</li>")


def new_key() -> str:
    return Fernet.generate_key().decode()


def make_app(pg, database: str, keys: str | None, tmp_path=None, **config):
    settings = {"TESTING": True, "SECRET_KEY": "operations-tests", "SQLALCHEMY_DATABASE_URI": pg.url_for(database),
                "MAIL_BACKEND": "memory", **config}
    if keys is not None:
        settings["ENCRYPTION_KEYS"] = keys
    if tmp_path is not None:
        settings.setdefault("ATTACHMENTS_PATH", str(tmp_path / "attachments"))
    return create_app(settings)


@contextmanager
def committed_database(pg, prefix: str, keys: str, tmp_path=None, **config):
    """A database of its own, migrated, and an app on it with `keys`; dropped afterwards."""
    name = pg.create_database(prefix)
    app = make_app(pg, name, keys, tmp_path, **config)
    with app.app_context():
        upgrade()
        db.session.remove()
    try:
        yield app, name
    finally:
        dispose(app)
        pg.drop_database(name)


def dispose(app) -> None:
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def staff_member(app, role: str = "admin"):
    """A committed employee with a login (password tests.factories.PASSWORD); returns its email."""
    from tests import factories as f

    with app.app_context():
        employee = f.make_staff(db.session, role=role)
        email = employee.email
        db.session.commit()
        db.session.remove()
    return email


def enrol_two_factor(app, email: str) -> tuple[str, list[str]]:
    """Turn two-factor sign-in on through the pages, as the person would; returns (seed, recovery codes)."""
    browser = Browser(app.test_client())
    assert browser.sign_in(email).status_code == 302
    page = browser.get("/account/two-factor")
    seed = SECRET.search(page.get_data(as_text=True)).group(1)
    done = browser.post("/account/two-factor/enable", {"code": pyotp.TOTP(seed).now()})
    assert done.status_code == 200, done.get_data(as_text=True)[:500]
    codes = RECOVERY_CODES.findall(done.get_data(as_text=True))
    assert len(codes) == 10
    browser.post("/logout")
    return seed, codes


def forget_last_code(app, email: str) -> None:
    """Test setup: a code is good once, so a second sign-in within the same 30 s would need the next one."""
    with app.app_context():
        db.session.execute(sa.text("UPDATE accounts SET totp_last_step = NULL WHERE email = :email"), {"email": email})
        db.session.commit()
        db.session.remove()


def sign_in_with_two_factor(app, email: str, code: str):
    """Password, then the code; returns (browser, the answer to the code)."""
    browser = Browser(app.test_client())
    first = browser.sign_in(email, PASSWORD)
    assert first.status_code == 302 and first.headers["Location"].endswith("/login/verify"), first.status_code
    browser.get("/login/verify")
    return browser, browser.post("/login/verify", {"code": code})


def raw_seed(app, email: str) -> str | None:
    """accounts.totp_secret as stored (not decrypted)."""
    with app.app_context():
        try:
            return db.session.scalar(sa.text("SELECT totp_secret FROM accounts WHERE email = :email"), {"email": email})
        finally:
            db.session.remove()
