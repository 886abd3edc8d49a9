"""Fixtures for tests in a real headless Chromium, driven by Playwright.

The portal runs for real: a database of its own migrated and loaded with the demo data, served by
werkzeug on a free port in a thread of this process. The browser is Debian's Chromium
(/usr/bin/chromium, which .ci/run installs); Playwright never downloads a browser here.

Without that browser the tests are skipped, with one line saying how to get it, so the README's
test command passes on a fresh machine; with PORTAL_REQUIRE_BROWSER=1 (set by .ci/run) a missing
browser fails them instead, so CI never skips them quietly. PORTAL_CHROMIUM names another binary.

Every test in this folder carries the `browser` marker, so `pytest -m "not browser"` leaves them out.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("PORTAL_CHROMIUM") or "/usr/bin/chromium"
REQUIRE_BROWSER = os.environ.get("PORTAL_REQUIRE_BROWSER", "").strip() not in ("", "0")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
]
PASSWORD = "correct horse battery"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
# Waits are tied to events (an element, a response, a download) and end as soon as it happens; the
# limit only says when to give up, so it is generous: a loaded CI machine must not fail a test.
TIMEOUT_MS = 60_000
DOWNLOAD_TIMEOUT_MS = 60_000

HERE = Path(__file__).resolve().parent


def pytest_configure(config):
    config.addinivalue_line("markers", "browser: runs in a real headless Chromium (needs /usr/bin/chromium)")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session", autouse=True)
def browser_installed():
    """Skip (or, with PORTAL_REQUIRE_BROWSER=1, fail) every browser test when Chromium is missing.

    Raised once by a session fixture, so pytest reports it as one line for all the tests, and
    before any of them starts a database.
    """
    if os.access(CHROMIUM, os.X_OK):
        return
    if REQUIRE_BROWSER:
        pytest.fail(f"{CHROMIUM} is missing and PORTAL_REQUIRE_BROWSER is set: install Debian's Chromium "
                    "with `apt-get install chromium` (.ci/run does).", pytrace=False)
    pytest.skip(NO_BROWSER)


NO_BROWSER = f"browser tests need Chromium at {CHROMIUM}: run `apt-get install chromium` to get them"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """pytest files a fixture's skip under each test's own line; file this one under this file, so
    the summary folds all of them into one line."""
    report = yield
    if report.skipped and isinstance(report.longrepr, tuple) and NO_BROWSER in str(report.longrepr[2]):
        report.longrepr = (__file__, None, report.longrepr[2])
    return report


# Package scope, not session: the live server's worker runs scans with `db.session`, which the
# `session` fixture of the tests after tests/browser replaces by the test's own; a worker still
# running then would commit on a test's connection (a suite slowed down by a busy machine hit it).
@pytest.fixture(scope="package")
def live_app(pg):
    """The portal app on a database of its own with the demo data (mail kept in memory)."""
    from flask_migrate import upgrade

    from portal import create_app
    from portal.extensions import db
    from portal.services.seed import load_demo_data

    name = pg.create_database("techserv_browser")
    try:
        app = create_app({
            "TESTING": False,
            "SECRET_KEY": "browser-tests",
            "SQLALCHEMY_DATABASE_URI": pg.url_for(name),
            "MAIL_BACKEND": "memory",
        })
        with app.app_context():
            upgrade()
            load_demo_data(db.session, password=PASSWORD, tax_rate=Decimal("0"))
            db.session.commit()
            db.session.remove()
            db.engine.dispose()
        yield app
        with app.app_context():
            db.engine.dispose()
    finally:
        pg.drop_database(name)


@pytest.fixture(scope="package")
def live_server(live_app):
    """The base URL ("http://127.0.0.1:PORT") of the portal with the demo data, served in a thread,
    with a real worker beside it (as `flask demo` runs one): mails go out from the worker."""
    from werkzeug.serving import make_server

    from portal.jobs.runner import run_worker

    server = make_server("127.0.0.1", 0, live_app, threaded=True)
    base = f"http://127.0.0.1:{server.server_port}"
    live_app.config["PUBLIC_BASE_URL"] = base
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    stop = threading.Event()
    worker = threading.Thread(target=run_worker, args=(live_app,), kwargs={"stop": stop}, name="worker", daemon=True)
    worker.start()
    try:
        yield base
    finally:
        stop.set()
        worker.join(timeout=30)
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


@pytest.fixture
def outbox(live_app, live_server):
    """The mails the live server's worker sent (SMTP is the one thing we cannot run here); reading it
    waits (up to a minute) until the worker has sent every mail waiting in the queue."""
    import time

    import psycopg

    from portal.jobs.runner import libpq_url
    from tests.conftest import MailOutbox

    def settle():
        deadline = time.monotonic() + 60
        with psycopg.connect(libpq_url(live_app), autocommit=True) as connection:
            while connection.execute("SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'mail.send'"
                                     " AND status IN ('todo', 'doing')").fetchone()[0]:
                if time.monotonic() > deadline:
                    raise AssertionError("the worker did not send the waiting mails within a minute")
                time.sleep(0.1)

    return MailOutbox(live_app.extensions["mailer"]["outbox"], settle)


@pytest.fixture(scope="session")
def playwright_driver():
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=TIMEOUT_MS)  # expect() waits 5 s by default, whatever the context says
    driver = sync_playwright().start()
    try:
        yield driver
    finally:
        driver.stop()


@pytest.fixture(scope="session")
def chromium(playwright_driver):
    """Debian's headless Chromium (`browser_installed` has checked it is there)."""
    browser = playwright_driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
    try:
        yield browser
    finally:
        browser.close()


@dataclass
class PageProblems:
    """What went wrong inside the page: console errors (a CSP violation is one) and uncaught exceptions."""

    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)

    def all(self, *, expected_status: int | None = None) -> list[str]:
        """Every problem, except Chromium's "Failed to load resource" line for `expected_status` (a
        page the app answers with that status on purpose, such as a 401 for a refused sign-in)."""
        expected = f"the server responded with a status of {expected_status} " if expected_status else None
        return [f"console error: {text}" for text in self.console_errors
                if not (expected and text.startswith("Failed to load resource: " + expected))] + \
               [f"page error: {text}" for text in self.page_errors]


def _watch(page, problems: PageProblems) -> None:
    def on_console(message):
        if message.type == "error":
            location = message.location or {}
            problems.console_errors.append(f"{message.text} ({location.get('url', '?')}:{location.get('lineNumber', '?')})")

    page.on("console", on_console)
    page.on("pageerror", lambda error: problems.page_errors.append(str(error)))


@pytest.fixture
def page_problems():
    return PageProblems()


SIZES = {
    "desktop": {"viewport": DESKTOP},
    "phone": {"viewport": PHONE, "is_mobile": True, "has_touch": True},
}


@pytest.fixture
def new_page(chromium, live_server, page_problems):
    """A factory of pages: new_page("desktop" or "phone"), each in a fresh browser context (no
    cookies), watched for console and page errors (collected in `page_problems`)."""
    contexts = []

    def make(size: str = "desktop"):
        context = chromium.new_context(base_url=live_server, **SIZES[size])
        context.set_default_timeout(TIMEOUT_MS)
        context.set_default_navigation_timeout(TIMEOUT_MS)
        contexts.append(context)
        page = context.new_page()
        _watch(page, page_problems)
        return page

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def page(new_page):
    """A fresh desktop-size page in a context of its own."""
    return new_page()


def htmx_settled(page) -> None:
    """Wait until htmx has swapped, settled and wired up the new content (forms post via htmx)."""
    page.wait_for_function(
        "() => document.readyState === 'complete' && !!window.htmx"
        " && !document.querySelector('.htmx-request, .htmx-settling, .htmx-swapping')"
        " && Array.from(document.querySelectorAll('[hx-post], [hx-get]')).every(e => e['htmx-internal-data'])")


def sign_in(page, email: str, password: str = PASSWORD) -> None:
    """Sign in through the form (by default as a person of the demo data)."""
    page.goto("/login")
    page.get_by_role("textbox", name="Email", exact=True).fill(email)
    page.get_by_role("textbox", name="Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()
