"""Reading the support mailbox: every minute the worker polls it over IMAP (Python's imaplib).

- TLS: IMAP_SECURITY "ssl" (implicit TLS, 993) or "starttls" (143, upgraded before login, refused
  if the server does not offer it); "plain" only for a test server on this machine.
- One reader at a time: a PostgreSQL advisory lock (session-level, on a connection of its own)
  is held while polling; another worker finding it taken skips this minute.
- Each message: read without marking it seen (BODY.PEEK), acted on and recorded in one
  transaction (services/mail_in.process), committed, and only then moved to
  IMAP_PROCESSED_FOLDER (MOVE, or COPY + \\Deleted + UID EXPUNGE where MOVE is missing: the
  message lives on in the folder; nothing is deleted from the server). A failure rolls back and
  leaves the message in the inbox for the next run; a crash after the commit but before the move
  leaves it there too, and the next run finds its Message-ID recorded and only moves it.
"""

from __future__ import annotations

import imaplib
import logging
import ssl
from dataclasses import dataclass

import sqlalchemy as sa

from portal.extensions import db
from portal.services import attachments, clock, mail_in

log = logging.getLogger("portal.mailbox")

# pg_try_advisory_lock key: "mailin" as a number, one mailbox per portal.
LOCK_KEY = 0x6D61696C696E
SECURITIES = ("ssl", "starttls", "plain")


@dataclass(frozen=True)
class Mailbox:
    host: str
    port: int
    security: str
    username: str
    password: str
    inbox: str
    processed: str

    @classmethod
    def from_config(cls, config) -> Mailbox | None:
        """The configured mailbox, or None when IMAP_HOST is unset (mail in is off)."""
        if not config.get("IMAP_HOST"):
            return None
        security = (config.get("IMAP_SECURITY") or "ssl").lower()
        if security not in SECURITIES:
            raise ValueError(f"IMAP_SECURITY must be one of {', '.join(SECURITIES)}, not {security!r}")
        port = config.get("IMAP_PORT") or (993 if security == "ssl" else 143)
        return cls(config["IMAP_HOST"], int(port), security, config.get("IMAP_USERNAME") or "",
                   config.get("IMAP_PASSWORD") or "", config.get("IMAP_INBOX") or "INBOX",
                   config.get("IMAP_PROCESSED_FOLDER") or "Processed")


@dataclass
class PollResult:
    busy: bool = False  # another worker held the mailbox
    processed: int = 0
    failed: int = 0
    outcomes: dict | None = None


def connect(box: Mailbox) -> imaplib.IMAP4:
    """A logged-in IMAP connection. :raises imaplib.IMAP4.error, OSError, ssl.SSLError: as the server answers."""
    if box.security == "ssl":
        connection = imaplib.IMAP4_SSL(box.host, box.port, ssl_context=ssl.create_default_context(), timeout=30)
    else:
        connection = imaplib.IMAP4(box.host, box.port, timeout=30)
        if box.security == "starttls":
            connection.starttls(ssl_context=ssl.create_default_context())
    connection.login(box.username, box.password)
    # The capabilities after login (MOVE among them) are not those of the greeting.
    status, answer = connection.capability()
    if status == "OK" and answer and answer[0]:
        connection.capabilities = tuple(answer[0].decode().upper().split())
    return connection


def _quoted(folder: str) -> str:
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _move(connection: imaplib.IMAP4, uid: bytes, folder: str) -> None:
    if "MOVE" in connection.capabilities:
        status, answer = connection.uid("MOVE", uid, _quoted(folder))
    else:
        status, answer = connection.uid("COPY", uid, _quoted(folder))
        if status == "OK":
            connection.uid("STORE", uid, "+FLAGS.SILENT", r"(\Deleted)")
            status, answer = connection.uid("EXPUNGE", uid)
    if status != "OK":
        raise imaplib.IMAP4.error(f"moving message {uid!r} to {folder} failed: {answer!r}")


def settings_for(app) -> mail_in.Settings:
    from email.utils import parseaddr

    own = {parseaddr(app.config.get("MAIL_FROM") or "")[1].lower(),
           (app.config.get("MAIL_IN_ADDRESS") or "").lower(), (app.config.get("IMAP_USERNAME") or "").lower()}
    return mail_in.Settings(own_addresses=frozenset(a for a in own if "@" in a),
                            max_per_hour=app.config.get("MAIL_IN_MAX_PER_HOUR") or mail_in.DEFAULT_MAX_PER_HOUR)


def poll(app, *, checkpoint=None) -> PollResult | None:
    """Read the inbox once (in `app`'s context); None when mail in is off.

    `checkpoint(stage, uid)` is called with "processed" before a message's commit and "committed"
    between its commit and its move (the crash tests kill the process there).
    """
    box = Mailbox.from_config(app.config)
    if box is None:
        return None
    with db.engine.connect() as lock_connection:
        if not lock_connection.scalar(sa.select(sa.func.pg_try_advisory_lock(LOCK_KEY))):
            lock_connection.rollback()
            return PollResult(busy=True)
        lock_connection.commit()  # the lock is the session's; no transaction stays open beside it
        try:
            return _read(app, box, checkpoint)
        finally:
            lock_connection.execute(sa.select(sa.func.pg_advisory_unlock(LOCK_KEY)))
            lock_connection.commit()


def _read(app, box: Mailbox, checkpoint=None) -> PollResult:
    settings = settings_for(app)
    storage = attachments.Storage(app.config["ATTACHMENTS_PATH"])
    result = PollResult(outcomes={})
    connection = connect(box)
    try:
        connection.create(_quoted(box.processed))  # NO when it exists already: fine
        status, _ = connection.select(_quoted(box.inbox))
        if status != "OK":
            raise imaplib.IMAP4.error(f"cannot open {box.inbox}")
        status, found = connection.uid("SEARCH", None, "ALL")
        for uid in (found[0] or b"").split():
            status, fetched = connection.uid("FETCH", uid, "(BODY.PEEK[])")
            raw = next((part[1] for part in fetched if isinstance(part, tuple)), None)
            if status != "OK" or raw is None:
                result.failed += 1
                continue
            try:
                record = mail_in.process(db.session, storage, raw, settings, now=clock.now())
                outcome = record.outcome
                if checkpoint is not None:
                    checkpoint("processed", uid)
                db.session.commit()
            except Exception:  # noqa: BLE001  one bad message must not stop the others
                db.session.rollback()
                log.exception("Mail %s stays in %s: processing it failed", uid.decode(), box.inbox)
                result.failed += 1
                continue
            if checkpoint is not None:
                checkpoint("committed", uid)
            _move(connection, uid, box.processed)
            result.processed += 1
            result.outcomes[outcome] = result.outcomes.get(outcome, 0) + 1
    finally:
        try:
            connection.logout()
        except (imaplib.IMAP4.error, OSError):
            pass
    return result

