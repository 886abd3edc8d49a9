"""Is this portal ready to serve? The checks of `/readyz` and of the admins' System page.

- database: it answers;
- schema: its migration revision is the code's head (else `flask db upgrade` is due, or the code
  is older than the database);
- worker: some `flask worker` sent a heartbeat within READY_HEARTBEATS heartbeats (mails, webhooks
  and scans wait in the queue while none runs);
- encryption: the keys of ENCRYPTION_KEYS are there and open the newest secret of each encrypted
  column (a key missing after a deploy would otherwise show only at someone's two-factor sign-in).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache

import sqlalchemy as sa

log = logging.getLogger(__name__)

READY_HEARTBEATS = 3


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class Readiness:
    checks: list[Check]

    @property
    def ready(self) -> bool:
        return all(check.ok for check in self.checks)


@lru_cache(maxsize=8)
def _heads(migrations_folder: str) -> frozenset[str]:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", migrations_folder)
    return frozenset(ScriptDirectory.from_config(config).get_heads())


def check(session, app) -> Readiness:
    """Every check, each with a sentence; the database's failure skips the others (they need it)."""
    try:
        session.execute(sa.text("SELECT 1"))
    except sa.exc.DBAPIError as error:
        session.rollback()
        reason = str(getattr(error, "orig", error)).strip().splitlines()[0]
        log.error("Not ready: the database does not answer (%s)", reason)
        return Readiness([Check("database", False, "the database does not answer")])
    checks = [Check("database", True, "answers")]
    checks.append(_schema(session, app))
    checks.append(_worker(session, app))
    checks.append(_encryption(session, app))
    return Readiness(checks)


def _schema(session, app) -> Check:
    heads = _heads(app.extensions["migrate"].directory)
    try:
        with session.begin_nested():
            revision = session.scalar(sa.text("SELECT version_num FROM alembic_version"))
    except sa.exc.ProgrammingError:
        revision = None
    if revision in heads:
        return Check("schema", True, f"at {revision}")
    expected = ", ".join(sorted(heads))
    if revision is None:
        return Check("schema", False, f"the database has no schema yet; run flask db upgrade (code expects {expected})")
    return Check("schema", False, f"the database is at {revision}, this code expects {expected}: run flask db upgrade "
                                  "(or deploy the code that matches the database)")


def _worker(session, app) -> Check:
    limit = READY_HEARTBEATS * int(app.config["WORKER_HEARTBEAT_SECONDS"])
    try:
        with session.begin_nested():
            age = session.scalar(sa.text(
                "SELECT EXTRACT(EPOCH FROM now() - max(last_heartbeat)) FROM procrastinate_workers"))
    except sa.exc.ProgrammingError:
        return Check("worker", False, "the job queue's tables are missing: run flask db upgrade")
    if age is None:
        return Check("worker", False, "no worker is running: start flask worker")
    if age > limit:
        return Check("worker", False, f"no worker heartbeat for {int(age)} s (more than {limit} s): "
                                      "is flask worker running?")
    return Check("worker", True, f"heartbeat {max(int(age), 0)} s ago")


def _encryption(session, app) -> Check:
    from portal.extensions import db
    from portal.services.secrets_at_rest import SETTING, EncryptionKeysError, key_use, keyring_of

    keyring = keyring_of(app)
    try:
        keyring.keys
        with session.begin_nested():
            use = key_use(session.connection(), keyring, db.metadatas[None], limit=1)
    except EncryptionKeysError as error:
        return Check("encryption", False, str(error))
    except sa.exc.ProgrammingError:  # the schema is not there yet: the schema check says so
        return Check("encryption", True, f"keys from {keyring.source}")
    if use.unreadable:
        columns = ", ".join(sorted(use.unreadable))
        return Check("encryption", False, f"the newest values of {columns} do not decrypt with {SETTING}: "
                                          "the key they were encrypted with is missing")
    return Check("encryption", True, f"{len(keyring.keys)} key{'s' if len(keyring.keys) != 1 else ''} "
                                     f"from {keyring.source}")
