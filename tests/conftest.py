"""Fixtures: one PostgreSQL per run, the schema built once by the migrations, a rolled-back
transaction per test, factories for the rows tests need."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet
from flask import appcontext_pushed
from flask_migrate import upgrade
from sqlalchemy import orm

from portal import create_app
from portal.extensions import db
from tests.pgserver import start_server, stop_server


@pytest.fixture(scope="session")
def pg():
    server, handle = start_server()
    try:
        yield server
    finally:
        stop_server(server, handle)


ATTACHMENTS: dict[str, str] = {}  # "root": where the test app keeps attachment files (set by `app`)
# The test app's key for the secrets encrypted at rest (a new one every run).
ENCRYPTION_KEY = Fernet.generate_key().decode()


@pytest.fixture(scope="session")
def app(pg, tmp_path_factory):
    name = pg.create_database()
    ATTACHMENTS["root"] = str(tmp_path_factory.mktemp("attachments"))
    app = create_app({
        "TESTING": True,
        "SECRET_KEY": "test-secret-key",
        "SQLALCHEMY_DATABASE_URI": pg.url_for(name),
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": False},
        "MAIL_BACKEND": "memory",
        "ATTACHMENTS_PATH": ATTACHMENTS["root"],
        "ENCRYPTION_KEYS": ENCRYPTION_KEY,
        # The app lives for the whole session: a report kept from one test would show another test's
        # changes late. tests/web/test_report_pages.py turns it on where it tests it.
        "REPORT_CACHE_SECONDS": 0,
    })
    with app.app_context():
        upgrade()
        db.engine.dispose()
    yield app
    with app.app_context():
        db.engine.dispose()
    pg.drop_database(name)


class _TestSession(orm.scoped_session):
    """The test's session, shared with the requests it makes.

    Flask-SQLAlchemy calls remove() at the end of every app context; here that undoes the
    request's uncommitted work, as closing the session would in production, but keeps the
    test's objects attached so the test can go on reading them.
    """

    def remove(self) -> None:
        if self.registry.has():
            self.registry().rollback()
            # A contact's request that committed ended its transaction, and with it the contact's
            # role and settings (SET LOCAL). Here a commit only released a savepoint of the test's
            # one transaction, so end the request's scope by hand as its commit would have.
            from portal.services.tenancy import clear_contact_scope

            clear_contact_scope(self.registry().connection())


@pytest.fixture
def session(app):
    """db.session inside a transaction that is rolled back after the test.

    Code under test may commit: with join_transaction_mode="create_savepoint" a commit only
    releases a savepoint, and the outer transaction still rolls everything back.
    """
    # A worker thread still running (a browser test's live worker) would run its scans through the
    # db.session replaced below, on this test's connection: the browser fixtures stop it first.
    import threading

    assert not [t for t in threading.enumerate() if t.name == "worker" and t.is_alive()], \
        "a live worker thread outlived the browser tests"
    # No app context is held during the test: each request must get its own, with its own `g`
    # (Flask reuses an outer app context, and with it the signed-in user, across requests).
    with app.app_context():
        engine = db.engine
    connection = engine.connect()
    outer = connection.begin()
    factory = orm.sessionmaker(bind=connection, join_transaction_mode="create_savepoint")
    scoped = _TestSession(factory)
    original = db.session
    db.session = scoped

    def commit_test_setup(sender, **extra):
        # What the test wrote before a request (or any app context) is "committed" (its savepoint released), as data
        # always is before a real request; the request's own work then commits or rolls back alone.
        scoped.commit()

    appcontext_pushed.connect(commit_test_setup, app)
    try:
        yield scoped
    finally:
        appcontext_pushed.disconnect(commit_test_setup, app)
        db.session = original
        scoped.registry().close()
        scoped.registry.clear()
        outer.rollback()
        connection.close()


@pytest.fixture
def client(app, session):
    return app.test_client()


@pytest.fixture
def htmx(app, session):
    """A test client whose requests carry HX-Request, as htmx's do."""
    client = app.test_client()
    client.environ_base["HTTP_HX_REQUEST"] = "true"
    return client


@pytest.fixture
def savepoint(session):
    """Run a statement expected to fail without spoiling the test's transaction."""

    class Savepoint:
        def fails(self, statement, params=None):
            nested = session.begin_nested()
            try:
                session.execute(sa.text(statement) if isinstance(statement, str) else statement, params or {})
                session.flush()
            except sa.exc.DBAPIError as exc:
                nested.rollback()
                return exc
            nested.rollback()
            return None

        def works(self, statement, params=None):
            nested = session.begin_nested()
            result = session.execute(sa.text(statement) if isinstance(statement, str) else statement, params or {})
            nested.commit()
            return result

    return Savepoint()


def run_due_jobs(app, session, *, limit: int = 1000) -> int:
    """Do what the worker would: run the jobs waiting in the queue, one after the other, here.

    Each job runs in the test's own transaction (so it sees what the test wrote), through the same
    task body and per-job unit of work as in the worker. Returns how many ran. A job that fails is
    marked failed and its error re-raised, so a test never passes over a broken job.
    """
    from portal.jobs.runner import TASK_BODIES, run_in_app
    import portal.jobs.tasks  # noqa: F401  (registers the tasks)

    ran = 0
    while ran < limit:
        row = session.execute(sa.text(
            "UPDATE procrastinate_jobs SET status = 'doing', attempts = attempts + 1 WHERE id = ("
            " SELECT id FROM procrastinate_jobs WHERE status = 'todo'"
            " AND (scheduled_at IS NULL OR scheduled_at <= now())"
            " ORDER BY priority DESC, id FOR UPDATE SKIP LOCKED LIMIT 1) RETURNING id, task_name, args")).one_or_none()
        if row is None:
            return ran
        job_id, task_name, args = row
        try:
            run_in_app(app, TASK_BODIES[task_name], args)
        except Exception:
            session.execute(sa.text("UPDATE procrastinate_jobs SET status = 'failed' WHERE id = :id"), {"id": job_id})
            raise
        session.execute(sa.text("UPDATE procrastinate_jobs SET status = 'succeeded' WHERE id = :id"), {"id": job_id})
        ran += 1
    return ran


class MailOutbox:
    """The mails sent (SMTP is the one thing we cannot run here), read after the worker's turn.

    Mails go out from the worker, after the change committed; reading this first runs the jobs
    waiting in the queue (`settle`), as the worker would have by the time someone reads their mail.
    """

    def __init__(self, sent: list, settle):
        self.sent = sent
        self.settle = settle

    def _mails(self) -> list:
        self.settle()
        return self.sent

    def __len__(self):
        return len(self._mails())

    def __iter__(self):
        return iter(list(self._mails()))

    def __getitem__(self, index):
        return self._mails()[index]

    def __bool__(self):
        return bool(self._mails())

    def __eq__(self, other):
        return list(self._mails()) == other

    def clear(self) -> None:
        self.sent.clear()


@pytest.fixture
def run_jobs(app, session):
    """Run the jobs waiting in the queue now (the worker's turn), in the test's transaction."""
    return lambda: run_due_jobs(app, session)


@pytest.fixture
def outbox(app, session):
    """The mails the app sent during the test, once the worker has had its turn."""
    sent = app.extensions["mailer"]["outbox"]
    sent.clear()
    yield MailOutbox(sent, lambda: run_due_jobs(app, session))
    sent.clear()


CSRF_PATTERN = re.compile(r'name="csrf-token" content="([^"]+)"')


class Browser:
    """A test client that behaves like a person with a browser: it reads the CSRF token off the
    page it is on and sends it with its forms, as the real pages do."""

    def __init__(self, client):
        self.client = client
        self.token: str | None = None

    def get(self, url, **kw):
        response = self.client.get(url, **kw)
        match = CSRF_PATTERN.search(response.get_data(as_text=True))
        if match:
            self.token = match.group(1)
        return response

    def post(self, url, data=None, csrf=True, **kw):
        data = dict(data or {})
        if csrf:
            if self.token is None:
                self.get("/login")
            data.setdefault("csrf_token", self.token)
        return self.client.post(url, data=data, **kw)

    def sign_in(self, email, password=None):
        from tests.factories import PASSWORD

        self.get("/login")
        response = self.post("/login", {"email": email, "password": password or PASSWORD})
        if response.status_code == 302:
            self.get(response.headers["Location"])  # the landing page, with the new session's CSRF token
        return response


@pytest.fixture
def browser(app, session):
    return Browser(app.test_client())


@pytest.fixture
def other_browser(app, session):
    return Browser(app.test_client())


def count_queries(session, action) -> int:
    """How many SQL statements `action()` runs (the harness's savepoints not counted)."""
    from sqlalchemy import event

    statements = []
    engine = session.get_bind().engine
    listener = lambda conn, cursor, statement, *a: statements.append(statement)  # noqa: E731
    event.listen(engine, "before_cursor_execute", listener)
    try:
        action()
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    # Savepoints are the test harness's (each request "commits" the test's setup), not the page's.
    return len([s for s in statements if not s.lstrip().upper().startswith(("SAVEPOINT", "RELEASE", "ROLLBACK"))])
