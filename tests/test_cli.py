"""The newcomer's commands: `flask seed` and `flask demo`, the latter as a real process serving real HTTP."""

from __future__ import annotations

import http.cookiejar
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import psutil
import pytest
import sqlalchemy as sa

from portal.models import Customer

ROOT = Path(__file__).resolve().parent.parent


def test_seed_command_loads_once(app, session):
    runner = app.test_cli_runner()
    first = runner.invoke(args=["seed", "--password", "correct horse battery"])
    assert first.exit_code == 0, first.output
    assert first.output.startswith("Demo data loaded: 5 customers, 10 contacts, 5 employees")
    second = runner.invoke(args=["seed", "--password", "correct horse battery"])
    assert second.exit_code == 0
    assert "nothing changed" in second.output
    assert session.scalar(sa.select(sa.func.count()).select_from(Customer)) == 5


def test_seed_command_refuses_a_short_password_clearly(app, session):
    result = app.test_cli_runner().invoke(args=["seed", "--password", "abc"])
    assert result.exit_code == 1
    assert "Error: Use at least 8 characters" in result.output
    assert session.scalar(sa.select(sa.func.count()).select_from(Customer)) == 0


def test_seed_command_requires_a_password(app, session):
    result = app.test_cli_runner().invoke(args=["seed"])
    assert result.exit_code == 2
    assert "Missing option '--password'" in result.output


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_demo(instance: Path, port: int, extra_env: dict | None = None) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(INSTANCE_PATH=str(instance), PYTHONUNBUFFERED="1", **(extra_env or {}))
    return subprocess.Popen([sys.executable, "-m", "flask", "demo", "--port", str(port)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _wait_for_page(process: subprocess.Popen, url: str, timeout: float = 90) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"flask demo exited early:\n{process.stdout.read()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.read().decode()
        except OSError:
            time.sleep(0.3)
    raise AssertionError("flask demo did not answer in time")


def _sign_in(base: str, email: str, password: str) -> str:
    """Sign in over real HTTP as a browser would (cookie, CSRF token, redirects); the landing page."""
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    login_page = opener.open(f"{base}/login", timeout=10).read().decode()
    token = re.search(r'name="csrf-token" content="([^"]+)"', login_page).group(1)
    form = urllib.parse.urlencode({"csrf_token": token, "email": email, "password": password}).encode()
    return opener.open(f"{base}/login", data=form, timeout=30).read().decode()


def _stop(process: subprocess.Popen) -> str:
    process.send_signal(signal.SIGTERM)
    try:
        output, _ = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
    return output


def _postgres_running_in(pgdata: Path) -> bool:
    for proc in psutil.process_iter(attrs=["name", "cmdline"]):
        if proc.info["name"] == "postgres" and str(pgdata) in " ".join(proc.info["cmdline"] or []):
            return True
    return False


@pytest.mark.skipif(bool(os.environ.get("TEST_DATABASE_URL")), reason="this test is about the embedded server")
def test_demo_on_a_fresh_machine_with_the_embedded_database(tmp_path):
    """`flask demo` with no DATABASE_URL: starts PostgreSQL, migrates, seeds, serves, stops it on SIGTERM."""
    instance = tmp_path / "instance"
    port = _free_port()
    process = _start_demo(instance, port)
    try:
        page = _wait_for_page(process, f"http://127.0.0.1:{port}/")
        assert "Sign in" in page
        portal = _sign_in(f"http://127.0.0.1:{port}", "sarah.johnson@denvertech.com", "techserv-demo-2026")
    finally:
        output = _stop(process)
    assert "Welcome, Sarah Johnson" in portal and "Denver Tech Solutions" in portal
    assert "Demo data loaded" in output
    assert "Demo logins (password: techserv-demo-2026)" in output
    assert "priya.natarajan@techserv.com" in output and "sarah.johnson@denvertech.com" in output
    assert f"Serving TechServ Portal on http://127.0.0.1:{port}/" in output
    assert "Traceback" not in output
    assert (instance / "pgdata" / "PG_VERSION").exists()
    assert not _postgres_running_in(instance / "pgdata"), "the embedded server outlived flask demo"

    # A second start reuses the data as it is.
    port = _free_port()
    process = _start_demo(instance, port)
    try:
        _wait_for_page(process, f"http://127.0.0.1:{port}/")
    finally:
        output = _stop(process)
    assert "already holds the demo data" in output
    assert not _postgres_running_in(instance / "pgdata")


def test_demo_with_database_url(pg, tmp_path):
    name = pg.create_database("techserv_demo")
    port = _free_port()
    process = _start_demo(tmp_path / "instance", port, {"DATABASE_URL": pg.libpq_url_for(name)})
    try:
        _wait_for_page(process, f"http://127.0.0.1:{port}/")
        page = _sign_in(f"http://127.0.0.1:{port}", "robert.wilson@bouldermfg.com", "techserv-demo-2026")
        assert "Boulder Manufacturing Co" in page
    finally:
        _stop(process)
        pg.drop_database(name)
    assert not (tmp_path / "instance" / "pgdata").exists()
