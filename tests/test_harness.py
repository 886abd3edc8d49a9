"""The test harness itself: it passes on a fresh machine and survives what else runs beside it."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
INSTALL_HINT = "apt-get install chromium"


def _browser_tests(**env) -> subprocess.CompletedProcess:
    """Run the browser tests in a pytest of their own, with Chromium looked for where there is none.

    TEST_DATABASE_URL names a server that does not answer: the run must settle before any database.
    """
    environment = {k: v for k, v in os.environ.items() if k not in ("PORTAL_REQUIRE_BROWSER", "PORTAL_CHROMIUM")}
    environment.update(PORTAL_CHROMIUM="/nonexistent/chromium",
                       TEST_DATABASE_URL="postgresql://nobody@127.0.0.1:1/nothing", **env)
    return subprocess.run([sys.executable, "-m", "pytest", "tests/browser", "-p", "no:cacheprovider"],
                          cwd=ROOT, env=environment, capture_output=True, text=True, timeout=300)


def test_without_chromium_the_browser_tests_are_skipped_with_one_line():
    run = _browser_tests()
    assert run.returncode == 0, run.stdout + run.stderr
    hints = [line for line in run.stdout.splitlines() if INSTALL_HINT in line]
    assert len(hints) == 1, run.stdout
    assert hints[0].startswith("SKIPPED [") and "/nonexistent/chromium" in hints[0]
    assert " skipped" in run.stdout.splitlines()[-1] and "error" not in run.stdout.splitlines()[-1]


def test_ci_makes_a_missing_chromium_a_failure():
    run = _browser_tests(PORTAL_REQUIRE_BROWSER="1")
    assert run.returncode == 1, run.stdout + run.stderr
    assert "PORTAL_REQUIRE_BROWSER" in run.stdout and INSTALL_HINT in run.stdout
    assert "skipped" not in run.stdout.splitlines()[-1]
    assert "PORTAL_REQUIRE_BROWSER=1" in (ROOT / ".ci" / "run").read_text()


def test_the_embedded_server_keeps_its_data_out_of_pytests_shared_folder(pg, tmp_path_factory):
    """Another pytest session of the same user resets /tmp/pytest-of-<user> to 0700 when it starts;
    the server's data must not be under it, and the server must go on working when that happens."""
    if pg.data_dir is None:
        pytest.skip("TEST_DATABASE_URL's server keeps its data where its administrator put it")
    pytest_root = tmp_path_factory.getbasetemp().resolve().parent
    assert pytest_root not in pg.data_dir.resolve().parents
    assert pg.data_dir.name.startswith("techserv-test-pg-")
    mode = stat.S_IMODE(pytest_root.stat().st_mode)
    try:
        pytest_root.chmod(0o700)  # what every new pytest session does
        name = pg.create_database("techserv_harness")
        pg.drop_database(name)
    finally:
        pytest_root.chmod(mode)
