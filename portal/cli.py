"""The portal's `flask` commands: demo, seed, generate, worker, and running it: backup, restore, rotate-keys."""

from __future__ import annotations

import click
import sqlalchemy as sa
from flask import Flask, current_app
from flask.cli import with_appcontext

DEMO_PASSWORD = "techserv-demo-2026"


def _unreachable(exc: Exception) -> click.ClickException:
    reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
    return click.ClickException(f"cannot reach the database ({reason}). Check DATABASE_URL.")


def register_cli(app: Flask) -> None:
    app.cli.add_command(seed_command)
    app.cli.add_command(demo_command)
    app.cli.add_command(generate_command)
    app.cli.add_command(close_resolved_command)
    app.cli.add_command(worker_command)
    app.cli.add_command(backup_command)
    app.cli.add_command(restore_command)
    app.cli.add_command(rotate_keys_command)
    app.cli.add_command(api_client_group)


@click.group("api-client")
def api_client_group() -> None:
    """REST API clients (OAuth 2.0 client credentials)."""


@api_client_group.command("create")
@click.option("--name", required=True, help="Who uses it, like \"n8n production\".")
@click.option("--scopes", required=True, help="Space-separated, like \"tickets:read tickets:write\".")
@with_appcontext
def api_client_create_command(name: str, scopes: str) -> None:
    """Create a client and print its credentials (the secret is shown only now)."""
    from portal.extensions import db
    from portal.services import api_clients
    from portal.services.errors import DomainError
    from portal.services.policy import Principal

    try:
        client, secret = api_clients.create_client(db.session, Principal.system("flask api-client create"),
                                                   name, scopes)
        db.session.commit()
    except DomainError as error:
        db.session.rollback()
        raise click.ClickException(error.message) from None
    except sa.exc.IntegrityError:
        db.session.rollback()
        raise click.ClickException(f"A client named {name!r} exists already.") from None
    click.echo(f"client_id={client.client_key}")
    click.echo(f"client_secret={secret}")


@click.command("close-resolved")
@with_appcontext
def close_resolved_command() -> None:
    """Close tickets resolved more than 7 days ago (the worker does it every few minutes; this is by hand)."""
    from portal.extensions import db
    from portal.services.policy import Principal
    from portal.services.tickets import close_resolved

    closed = close_resolved(db.session, Principal.system("flask close-resolved"))
    db.session.commit()
    click.echo(f"Closed {closed} ticket{'s' if closed != 1 else ''} resolved more than 7 days ago.")


@click.command("worker")
@click.option("--concurrency", type=click.IntRange(1, 64), default=None,
              help="Jobs run at once by this worker (default WORKER_CONCURRENCY, 4).")
@click.option("--queue", "queues", multiple=True, help="Only these queues (mail, mail_in, webhooks, scans, default); all by default.")
@click.option("--burst", is_flag=True, help="Stop once no job is waiting (for cron, or to drain the queue).")
@with_appcontext
def worker_command(concurrency: int | None, queues: tuple[str, ...], burst: bool) -> None:
    """Run the worker: mails, webhook deliveries and the scheduled scans (run as many as you like)."""
    from portal.config import ConfigurationError, public_base_url
    from portal.jobs.runner import run_worker

    app = current_app._get_current_object()
    try:
        base = public_base_url(app.config)
    except ConfigurationError as error:
        raise click.ClickException(str(error.code)) from None
    click.echo(f"Worker started (links point to {base}); Ctrl+C stops it after the jobs in hand.")
    options = {"wait": not burst}
    if concurrency:
        options["concurrency"] = concurrency
    if queues:
        options["queues"] = list(queues)
    run_worker(app, **options)


@click.command("seed")
@click.option("--password", required=True, help="The password every demo login gets.")
@with_appcontext
def seed_command(password: str) -> None:
    """Load the seed's sample data and a believable history, with a login for everyone."""
    from portal.extensions import db
    from portal.services.errors import DomainError
    from portal.services.seed import load_demo_data

    try:
        result = load_demo_data(db.session, password=password, tax_rate=current_app.config["TAX_RATE"])
    except DomainError as error:
        db.session.rollback()
        raise click.ClickException(error.message) from None
    except sa.exc.OperationalError as exc:
        raise _unreachable(exc) from None
    db.session.commit()
    click.echo(result.summary())


@click.command("demo")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to serve on.")
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535), help="Port to serve on.")
@click.option("--password", default=DEMO_PASSWORD, show_default=True, help="Password of the demo logins.")
@with_appcontext
def demo_command(host: str, port: int, password: str) -> None:
    """Start the database, migrate, seed if empty, print the demo logins and serve the portal."""
    from flask_migrate import upgrade

    from portal.extensions import db
    from portal.services.errors import DomainError
    from portal.services.passwords import check_password_rules
    from portal.services.seed import demo_logins, is_seeded, load_demo_data

    app = current_app._get_current_object()
    try:
        check_password_rules(password)
    except DomainError as error:
        raise click.BadParameter(error.message, param_hint="--password") from None
    click.echo("Migrating the database ...")
    try:
        upgrade()
    except sa.exc.OperationalError as exc:
        raise _unreachable(exc) from None
    if not is_seeded(db.session):
        click.echo("Loading the demo data ...")
        result = load_demo_data(db.session, password=password, tax_rate=app.config["TAX_RATE"])
        db.session.commit()
        click.echo(result.summary())
        shown_password = password
    else:
        click.echo("The database already holds the demo data; it was left as it is.")
        shown_password = None
    logins = demo_logins(db.session)
    db.session.remove()

    click.echo("")
    click.echo("Demo logins" + (f" (password: {shown_password})" if shown_password else
                                " (password: the one given when the data was first loaded,"
                                f" {DEMO_PASSWORD} unless you chose another)") + ":")
    for kind, name, email, what in logins:
        click.echo(f"  {kind:<9} {email:<34} {name} - {what}")
    click.echo("")
    if not app.config.get("PUBLIC_BASE_URL"):
        shown_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        app.config["PUBLIC_BASE_URL"] = f"http://{shown_host}:{port}"
    click.echo(f"Serving TechServ Portal on http://{host}:{port}/ with a worker beside it (Ctrl+C stops both)")
    # app.run() refuses to run inside a `flask` command; Werkzeug's server is what it would start.
    import threading

    from werkzeug.serving import run_simple

    from portal.jobs.runner import run_worker

    stop = threading.Event()
    worker = threading.Thread(target=run_worker, args=(app,), kwargs={"stop": stop}, name="worker", daemon=True)
    worker.start()
    try:
        run_simple(host, port, app, threaded=True)
    finally:
        stop.set()
        worker.join(timeout=15)


@click.command("generate")
@click.option("--scale", type=click.Choice(["small", "large"]), help="A whole data set (an empty, migrated database).")
@click.option("--tickets", type=click.IntRange(1, 5_000_000), help="Only add this many tickets over existing data.")
@click.option("--seed", default=1, show_default=True, help="Same seed (and day), same data.")
@click.option("--password", default=DEMO_PASSWORD, show_default=True, help="Every generated login's password (--scale).")
@with_appcontext
def generate_command(scale: str | None, tickets: int | None, seed: int, password: str) -> None:
    """Generated data for performance work (docs/performance.md): --scale small|large, or --tickets N."""
    import time

    from portal.extensions import db
    from portal.services import clock

    if (scale is None) == (tickets is None):
        raise click.UsageError("give --scale small|large, or --tickets N (not both).")
    started = time.perf_counter()
    if scale is not None:
        _generate_scale(scale, seed, password)
        return
    from portal.services.generate import generate_tickets

    try:
        count = generate_tickets(db.session, tickets, now=clock.now(), seed=seed)
        db.session.commit()
    except ValueError as error:
        db.session.rollback()
        raise click.ClickException(str(error)) from None
    except sa.exc.OperationalError as exc:
        raise _unreachable(exc) from None
    inserted = time.perf_counter() - started
    # VACUUM sets the visibility map the queue's index-only scans rely on (autovacuum would, later).
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(sa.text("VACUUM (ANALYZE) support_tickets, ticket_status_changes"))
    click.echo(f"Generated {count:,} tickets in {inserted:.1f} s, vacuumed in {time.perf_counter() - started - inserted:.1f} s.")


class _Bars:
    """A progress bar per table on the terminal (one line each as it finishes; the live one redrawn)."""

    def __init__(self):
        import sys
        import time

        self.out, self.tty, self.time = sys.stderr, sys.stderr.isatty(), time
        self.done, self.total, self.started, self.ended = {}, {}, {}, {}

    def __call__(self, table, total):
        self.done[table], self.total[table], self.started[table] = 0, max(total, 1), self.time.perf_counter()

        def advance(n):
            self.done[table] += n
            self.ended[table] = self.time.perf_counter()
            self._draw(table)
        return advance

    def _line(self, table):
        done, total = self.done[table], self.total[table]
        filled = min(30, int(30 * done / total))
        return (f"{table:<22} [{'#' * filled}{'-' * (30 - filled)}] {done:>10,} / ~{total:,}"
                f"  {self.ended.get(table, self.started[table]) - self.started[table]:6.1f} s")

    def _draw(self, table):
        if self.tty:
            self.out.write("\r" + self._line(table) + "\x1b[K")
            self.out.flush()

    def close(self):
        if self.tty:
            self.out.write("\r\x1b[K")
        for table in self.done:
            self.out.write(self._line(table).replace(f" / ~{self.total[table]:,}", "") + "\n")
        self.out.flush()


def _generate_scale(scale: str, seed: int, password: str) -> None:
    import time

    from portal.extensions import db
    from portal.services import clock, dataset
    from portal.services.passwords import hash_password

    started = time.perf_counter()
    bars = _Bars()
    try:
        counts = dataset.generate_dataset(
            db.session, dataset.SCALES[scale], seed=seed, today=clock.today(), password_hash=hash_password(password),
            tax_rate=current_app.config["TAX_RATE"], progress=bars, log=lambda m: click.echo(m, err=True))
        db.session.commit()
    except ValueError as error:
        db.session.rollback()
        raise click.ClickException(str(error)) from None
    except sa.exc.OperationalError as exc:
        raise _unreachable(exc) from None
    finally:
        bars.close()
    loaded = time.perf_counter() - started
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.info[dataset.slow_queries.UNWATCHED] = True
        try:
            connection.execute(sa.text("VACUUM (ANALYZE)"))
        finally:
            connection.info.pop(dataset.slow_queries.UNWATCHED, None)
    click.echo(f"Generated the {scale} data set (seed {seed}) in {loaded:.0f} s, vacuumed in "
               f"{time.perf_counter() - started - loaded:.0f} s: "
               + ", ".join(f"{table} {count:,}" for table, count in counts.items()))
    click.echo(f"Every login's password: {password}. Sign in as admin: "
               + db.session.scalar(sa.text("SELECT email FROM employees WHERE role = 'admin' ORDER BY employee_id LIMIT 1"))
               + "; the largest customer's primary contact: "
               + db.session.scalar(sa.text("SELECT email FROM contacts WHERE customer_id = 1 AND is_primary_contact "
                                           "ORDER BY contact_id LIMIT 1")))


def _key_reminder(app: Flask) -> str:
    from portal.services.secrets_at_rest import SETTING, EncryptionKeysError, keyring_of

    keyring = keyring_of(app)
    try:
        ids = ", ".join(keyring.key_ids)
    except EncryptionKeysError:
        return f"{SETTING} is not set, so no secret could be encrypted yet."
    return (f"The backup holds the two-factor secrets only encrypted (key {ids}). Keep the key itself apart "
            f"from it ({keyring.source}): without the key they cannot be read after a restore.")


@click.command("backup")
@click.option("--to", "destination", type=click.Path(file_okay=False), default=None,
              help="Folder to write the backup into (default BACKUP_DIR, else the instance folder's backups/).")
@with_appcontext
def backup_command(destination: str | None) -> None:
    """Back up the database (a consistent pg_dump) and the attachments, with a manifest of checksums."""
    import os
    from pathlib import Path

    from portal.services.backups import BackupError, create_backup

    app = current_app._get_current_object()
    destination = destination or app.config.get("BACKUP_DIR") or os.path.join(app.instance_path, "backups")
    try:
        backup = create_backup(app, Path(destination))
    except BackupError as error:
        raise click.ClickException(str(error)) from None
    except sa.exc.OperationalError as exc:
        raise _unreachable(exc) from None
    click.echo(backup.summary())
    for kind in ("missing", "mismatched"):
        names = backup.manifest["attachments"][kind]
        if names:
            click.echo(f"Warning: {len(names)} attachment file(s) {kind} on disk (listed in the manifest).", err=True)
    click.echo(_key_reminder(app))


@click.command("restore")
@click.argument("source", type=click.Path(exists=True))
@click.option("--replace", is_flag=True,
              help="Drop everything in the database first.")
@click.option("--yes", is_flag=True, help="Do not ask before --replace drops the database's contents.")
@click.option("--keys-lost", is_flag=True,
              help="Restore even though ENCRYPTION_KEYS lacks the key of the backup's secrets "
                   "(two-factor users then sign in with a recovery code and set it up again).")
@with_appcontext
def restore_command(source: str, replace: bool, yes: bool, keys_lost: bool) -> None:
    """Restore a backup (its folder or its manifest.json) into an empty database (files already in the
    attachments folder are moved aside, kept)."""
    from pathlib import Path

    from portal.services.backups import BackupError, restore_backup

    app = current_app._get_current_object()
    if replace and not yes:
        click.confirm("--replace drops every table of the portal's database before restoring. Go on?", abort=True)
    try:
        restored = restore_backup(app, Path(source), replace=replace, keys_lost=keys_lost)
    except BackupError as error:
        raise click.ClickException(str(error)) from None
    except sa.exc.OperationalError as exc:
        raise _unreachable(exc) from None
    manifest = restored.backup.manifest
    click.echo(f"Restored {restored.backup.path.name} (made {manifest['created_at']}) into the database "
               f"{restored.database}: {restored.rows:,} rows, {restored.files:,} attachment "
               f"file{'s' if restored.files != 1 else ''}; rows and files match the backup's manifest.")
    for note in restored.notes:
        click.echo(note)
    for column, count in restored.unreadable_secrets.items():
        click.echo(f"Warning: {count} value(s) of {column} do not decrypt with ENCRYPTION_KEYS; those people sign "
                   "in with a recovery code and set up two-factor again.", err=True)
    if restored.behind_head:
        click.echo(f"The backup's schema ({restored.backup.revision}) is older than this code's: run flask db upgrade.")


@click.command("rotate-keys")
@click.option("--new-key", is_flag=True,
              help="First add a new key (to the instance folder's key file; with ENCRYPTION_KEYS, prints one to add).")
@with_appcontext
def rotate_keys_command(new_key: bool) -> None:
    """Re-encrypt every secret encrypted at rest under the newest key of ENCRYPTION_KEYS."""
    from portal.extensions import db
    from portal.services.secrets_at_rest import SETTING, EncryptionKeysError, keyring_of, rotate_all

    keyring = keyring_of(current_app._get_current_object())
    try:
        if new_key:
            click.echo(f"Added key {keyring.add_new_key()} first in {keyring.source}.")
        counts = rotate_all(db.session.connection(), keyring, db.metadatas[None])
    except EncryptionKeysError as error:
        db.session.rollback()
        raise click.ClickException(f"{error} Nothing was changed.") from None
    except sa.exc.OperationalError as exc:
        raise _unreachable(exc) from None
    db.session.commit()
    for column, count in counts.items():
        click.echo(f"{column}: {count} value{'s' if count != 1 else ''} re-encrypted")
    newest, *older = keyring.key_ids
    click.echo(f"Every secret is now encrypted with key {newest}, the newest."
               + (f" Once every app instance and worker runs with it, the older key{'s' if len(older) > 1 else ''} "
                  f"({', '.join(older)}) can be removed from {SETTING} ({keyring.source}); keep a copy stored away as long "
                  "as you keep backups made before now, which need it." if older else ""))
