"""Backup and restore with the real tools (pg_dump and pg_restore, the embedded server's or the machine's):
a backup restored into a new database gives the same rows and files and the app runs on it (two-factor
sign-in included); a newer schema, an older server, a database with data, a missing key or a damaged
file is refused; the worker's daily backup keeps the last BACKUP_KEEP."""

from __future__ import annotations

import hashlib
import json
import shutil
from decimal import Decimal
from pathlib import Path

import psycopg
import pyotp
import pytest
import sqlalchemy as sa

from portal.extensions import db
from portal.jobs.runner import TASK_BODIES, run_in_app
from portal.services import backups
from portal.services.seed import load_demo_data
from tests import factories as f
from tests.operations_support import (
    committed_database,
    dispose,
    enrol_two_factor,
    forget_last_code,
    make_app,
    new_key,
    sign_in_with_two_factor,
    staff_member,
)
from tests.pgserver import PgServer

KEY = new_key()
MACHINE_PG15 = "postgresql://postgres@127.0.0.1:5432/postgres"


def _head(app) -> str:
    """The code's migration head (what a backup of a fully migrated database records)."""
    from portal.services.readiness import _heads

    [head] = _heads(app.extensions["migrate"].directory)
    return head


def _files(root: Path) -> dict[str, str]:
    return {str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(root.rglob("*")) if path.is_file()}


def _rows(app) -> dict[str, int]:
    with app.app_context():
        try:
            return backups.row_counts(db.session.connection())
        finally:
            db.session.remove()


def _with_attachments(app, monkeypatch, count: int = 3) -> None:
    from tests.conftest import ATTACHMENTS

    monkeypatch.setitem(ATTACHMENTS, "root", app.config["ATTACHMENTS_PATH"])
    with app.app_context():
        ticket = f.make_ticket(db.session)
        for n in range(count):
            f.make_attachment(db.session, ticket, data=f"log line {n}\n".encode() * (n + 1), file_name=f"log{n}.txt")
        db.session.commit()
        db.session.remove()


@pytest.fixture(scope="module")
def source(pg, tmp_path_factory):
    """The demo data, attachments and an admin with two-factor sign-in on, committed, and a backup of it."""
    folder = tmp_path_factory.mktemp("backup-source")
    with committed_database(pg, "techserv_backup_src", KEY, folder) as (app, name):
        with app.app_context():
            load_demo_data(db.session, password="techserv-demo-2026", tax_rate=Decimal("0"))
            db.session.commit()
            db.session.remove()
        email = staff_member(app)
        seed, _ = enrol_two_factor(app, email)
        monkeypatch = pytest.MonkeyPatch()
        try:
            _with_attachments(app, monkeypatch)
        finally:
            monkeypatch.undo()
        result = app.test_cli_runner().invoke(args=["backup", "--to", str(folder / "backups")])
        assert result.exit_code == 0, result.output
        [made] = backups.list_backups(folder / "backups")
        yield {"app": app, "name": name, "email": email, "seed": seed, "backup": made, "output": result.output}


@pytest.fixture
def empty_target(pg, tmp_path):
    """An empty database and attachments folder, and an app on them with the same key."""
    name = pg.create_database("techserv_backup_dst")
    app = make_app(pg, name, KEY, tmp_path)
    yield app, name
    dispose(app)
    pg.drop_database(name)


def test_the_backup_writes_a_dump_a_tar_and_a_manifest_with_checksums(source):
    backup, app = source["backup"], source["app"]
    manifest = json.loads((backup.path / "manifest.json").read_text())
    assert sorted(p.name for p in backup.path.iterdir()) == ["attachments.tar", "database.pgdump", "manifest.json"]
    assert manifest["schema_revision"] == _head(app)
    assert manifest["created_at"] and manifest["postgresql"]["server_major"] >= 15
    for part in ("database", "attachments"):
        path = backup.path / manifest[part]["file"]
        assert manifest[part]["size"] == path.stat().st_size
        assert manifest[part]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert manifest["database"]["rows"] == _rows(app)
    assert manifest["attachments"]["count"] == 3 and manifest["attachments"]["missing"] == []
    assert (backup.path / "database.pgdump").read_bytes()[:5] == b"PGDMP"  # pg_dump's custom format
    # The key's id, never the key; and the reminder to keep the key apart.
    assert manifest["encryption"]["key_ids"] == [backups_key_id()] and KEY not in json.dumps(manifest)
    assert "Keep the key itself apart" in source["output"]


def backups_key_id() -> str:
    from portal.services.secrets_at_rest import key_id

    return key_id(KEY)


def test_backup_then_restore_into_a_new_database_gives_the_same_rows_and_files_and_the_app_runs(source,
                                                                                                 empty_target):
    app, _ = empty_target
    result = app.test_cli_runner().invoke(args=["restore", str(source["backup"].path)])
    assert result.exit_code == 0, result.output
    assert "rows and files match the backup's manifest" in result.output
    assert _rows(app) == _rows(source["app"])
    assert _files(Path(app.config["ATTACHMENTS_PATH"])) == _files(Path(source["app"].config["ATTACHMENTS_PATH"]))
    assert len(_files(Path(app.config["ATTACHMENTS_PATH"]))) == 3

    # The app runs on it: the schema is the code's, the key opens the seeds, two-factor sign-in as before.
    checks = app.test_client().get("/readyz").get_json()["checks"]
    assert checks["database"] == checks["schema"] == checks["encryption"] == "ok"
    forget_last_code(app, source["email"])
    browser, answer = sign_in_with_two_factor(app, source["email"], pyotp.TOTP(source["seed"]).now())
    assert answer.status_code == 302 and answer.headers["Location"].endswith("/staff/")
    assert browser.get("/staff/tickets/").status_code == 200
    assert Browser_signs_in_as_demo_contact(app)


def Browser_signs_in_as_demo_contact(app) -> bool:  # noqa: N802
    from tests.conftest import Browser

    browser = Browser(app.test_client())
    answer = browser.sign_in("sarah.johnson@denvertech.com", "techserv-demo-2026")
    return answer.status_code == 302 and browser.get("/portal/tickets").status_code == 200


def test_restore_refuses_a_database_with_data_unless_told_to_replace_it(source, empty_target):
    app, _ = empty_target
    runner = app.test_cli_runner()
    assert runner.invoke(args=["restore", str(source["backup"].path)]).exit_code == 0
    again = runner.invoke(args=["restore", str(source["backup"].path)])
    assert again.exit_code == 1
    assert "holds" in again.output and "--replace" in again.output
    with app.app_context():
        db.session.execute(sa.text("DELETE FROM ticket_comments"))
        db.session.commit()
        db.session.remove()
    replaced = runner.invoke(args=["restore", str(source["backup"].path), "--replace", "--yes"])
    assert replaced.exit_code == 0, replaced.output
    assert _rows(app) == _rows(source["app"])
    assert "kept in" in replaced.output  # the attachments that were in the way, moved aside
    assert _files(Path(app.config["ATTACHMENTS_PATH"])) == _files(Path(source["app"].config["ATTACHMENTS_PATH"]))


def test_files_left_in_the_attachments_folder_are_moved_aside_not_mixed_in(source, empty_target):
    """A newcomer deletes the demo's database (instance/pgdata) but not its attachments, then restores."""
    app, _ = empty_target
    root = Path(app.config["ATTACHMENTS_PATH"])
    (root / "ab").mkdir(parents=True)
    (root / "ab" / ("ab" + "0" * 30)).write_bytes(b"a file of the deleted database")
    result = app.test_cli_runner().invoke(args=["restore", str(source["backup"].path)])
    assert result.exit_code == 0, result.output
    assert "The attachment files that were in the way are kept in" in result.output
    assert _files(root) == _files(Path(source["app"].config["ATTACHMENTS_PATH"]))
    [aside] = root.parent.glob(root.name + ".replaced-*")
    assert (aside / "ab" / ("ab" + "0" * 30)).read_bytes() == b"a file of the deleted database"


def test_restore_refuses_a_backup_of_a_newer_schema(pg, tmp_path, empty_target):
    with committed_database(pg, "techserv_backup_newer", KEY, tmp_path / "newer") as (newer, _):
        with newer.app_context():
            db.session.execute(sa.text("UPDATE alembic_version SET version_num = '0099_from_a_newer_portal'"))
            db.session.commit()
            db.session.remove()
        made = backups.create_backup(newer, tmp_path / "backups")
    assert made.manifest["schema_revision"] == "0099_from_a_newer_portal"
    app, _ = empty_target
    result = app.test_cli_runner().invoke(args=["restore", str(made.path / "manifest.json")])
    assert result.exit_code == 1
    assert "made by a newer version of the portal (schema revision 0099_from_a_newer_portal" in result.output
    assert _rows(app) == {}  # nothing restored

    # The manifest alone is not trusted: the dump's own alembic_version must agree with it.
    manifest = json.loads((made.path / "manifest.json").read_text())
    manifest["schema_revision"] = _head(app)
    (made.path / "manifest.json").write_text(json.dumps(manifest))
    lied = app.test_cli_runner().invoke(args=["restore", str(made.path)])
    assert lied.exit_code == 1 and "the dump holds 0099_from_a_newer_portal" in lied.output


def test_restore_refuses_a_damaged_backup(source, empty_target, tmp_path):
    copy = tmp_path / source["backup"].path.name
    shutil.copytree(source["backup"].path, copy)
    with open(copy / "attachments.tar", "r+b") as tar:
        tar.seek(700)
        byte = tar.read(1)
        tar.seek(700)
        tar.write(bytes([byte[0] ^ 0xFF]))
    app, _ = empty_target
    result = app.test_cli_runner().invoke(args=["restore", str(copy)])
    assert result.exit_code == 1 and "does not match the manifest's size and sha256" in result.output
    assert _rows(app) == {}


def test_restore_refuses_when_encryption_keys_lack_the_backups_key(pg, source, tmp_path):
    name = pg.create_database("techserv_backup_nokey")
    app = make_app(pg, name, new_key(), tmp_path)
    try:
        refused = app.test_cli_runner().invoke(args=["restore", str(source["backup"].path)])
        assert refused.exit_code == 1
        assert backups_key_id() in refused.output and "ENCRYPTION_KEYS" in refused.output
        assert "--keys-lost" in refused.output and _rows(app) == {}
        anyway = app.test_cli_runner().invoke(args=["restore", str(source["backup"].path), "--keys-lost"])
        assert anyway.exit_code == 0, anyway.output
        assert "1 value(s) of accounts.totp_secret do not decrypt with ENCRYPTION_KEYS" in anyway.output
    finally:
        dispose(app)
        pg.drop_database(name)


def _machine_pg15() -> PgServer | None:
    try:
        with psycopg.connect(MACHINE_PG15, connect_timeout=3) as connection:
            if connection.info.server_version // 10000 != 15:
                return None
    except psycopg.OperationalError:
        return None
    return PgServer(MACHINE_PG15)


def test_a_dump_moves_to_the_same_or_a_newer_postgresql_never_an_older_one(pg, source, tmp_path, monkeypatch):
    pg15 = _machine_pg15()
    if pg15 is None or pg.server_version() // 10000 <= 15:
        pytest.skip("needs the machine's PostgreSQL 15 at 127.0.0.1:5432 beside a newer test server")
    # From the test server (newer) into PostgreSQL 15: refused, with the reason.
    older = pg15.create_database("techserv_backup_pg15")
    app15 = make_app(pg15, older, KEY, tmp_path / "pg15")
    try:
        refused = app15.test_cli_runner().invoke(args=["restore", str(source["backup"].path)])
        assert refused.exit_code == 1
        assert "a dump loads into the same or a newer major version only" in refused.output
    finally:
        dispose(app15)
        pg15.drop_database(older)

    # From PostgreSQL 15 (dumped with its own pg_dump 15) into the newer server: restored.
    with committed_database(pg15, "techserv_backup_from15", KEY, tmp_path / "from15") as (app_from, _):
        staff_member(app_from)
        _with_attachments(app_from, monkeypatch, count=1)
        made = backups.create_backup(app_from, tmp_path / "backups15")
        assert made.manifest["postgresql"]["pg_dump_major"] == 15
        newer = pg.create_database("techserv_backup_to_newer")
        app_new = make_app(pg, newer, KEY, tmp_path / "to-newer")
        try:
            result = app_new.test_cli_runner().invoke(args=["restore", str(made.path)])
            assert result.exit_code == 0, result.output
            assert _rows(app_new) == _rows(app_from)
        finally:
            dispose(app_new)
            pg.drop_database(newer)


def test_the_workers_daily_backup_runs_only_with_backup_dir_and_keeps_the_last_n(source, tmp_path, monkeypatch):
    from portal.jobs.queue import job_queue

    import portal.jobs.tasks  # noqa: F401  (registers the tasks)

    periodic = {task.task.name: task.cron for task in job_queue.periodic_registry.periodic_tasks.values()}
    assert periodic["maintenance.daily_backup"] == "30 2 * * *"
    app = source["app"]
    body = TASK_BODIES["maintenance.daily_backup"]
    monkeypatch.setitem(app.config, "BACKUP_DIR", None)
    assert run_in_app(app, body, {}) is None
    monkeypatch.setitem(app.config, "BACKUP_DIR", str(tmp_path / "daily"))
    monkeypatch.setitem(app.config, "BACKUP_KEEP", 2)
    made = [run_in_app(app, body, {}) for _ in range(3)]
    kept = backups.list_backups(tmp_path / "daily")
    assert [str(backup.path) for backup in kept] == made[1:]
    assert all(backup.manifest["database"]["rows"] == _rows(app) for backup in kept)
