"""Fixtures: one PostgreSQL per run, the schema built once by the migrations, a rolled-back
transaction per test, factories for the rows tests need."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from flask_migrate import upgrade
from sqlalchemy import orm

from portal import create_app
from portal.extensions import db
from tests.pgserver import start_server


@pytest.fixture(scope="session")
def pg(tmp_path_factory):
    server, handle = start_server(tmp_path_factory.mktemp("embedded-postgres"))
    yield server
    if handle is not None:
        handle.cleanup()


@pytest.fixture(scope="session")
def app(pg):
    name = pg.create_database()
    app = create_app({
        "TESTING": True,
        "SECRET_KEY": "test-secret-key",
        "SQLALCHEMY_DATABASE_URI": pg.url_for(name),
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": False},
    })
    with app.app_context():
        upgrade()
        db.engine.dispose()
    yield app
    with app.app_context():
        db.engine.dispose()
    pg.drop_database(name)


@pytest.fixture
def session(app):
    """db.session inside a transaction that is rolled back after the test.

    Code under test may commit: with join_transaction_mode="create_savepoint" a commit only
    releases a savepoint, and the outer transaction still rolls everything back.
    """
    with app.app_context():
        connection = db.engine.connect()
        outer = connection.begin()
        factory = orm.sessionmaker(bind=connection, join_transaction_mode="create_savepoint")
        scoped = orm.scoped_session(factory)
        original = db.session
        db.session = scoped
        try:
            yield scoped
        finally:
            db.session = original
            scoped.remove()
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
