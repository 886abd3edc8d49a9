"""The migrations build the whole schema on an empty database and remove all of it again."""

from __future__ import annotations

import secrets
import uuid

import psycopg
import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory
from flask_migrate import downgrade, upgrade
from psycopg import sql
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from portal import create_app
from portal.extensions import db


def _app_for(pg, name):
    return create_app({"TESTING": True, "SECRET_KEY": "x", "SQLALCHEMY_DATABASE_URI": pg.url_for(name)})


def migrate_database(pg, name: str) -> None:
    app = _app_for(pg, name)
    with app.app_context():
        upgrade()
        db.engine.dispose()


def _inventory(url: str) -> dict[str, set]:
    """Everything the migrations may create in the public schema, by kind."""
    with psycopg.connect(url) as conn:
        def names(sql):
            return {row[0] for row in conn.execute(sql).fetchall()}

        return {
            "tables": names("SELECT tablename FROM pg_tables WHERE schemaname = 'public'"),
            "types": names("SELECT t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace"
                           " WHERE n.nspname = 'public' AND t.typtype = 'e'"),
            "functions": names("SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
                               " WHERE n.nspname = 'public'"),
            "sequences": names("SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                               " WHERE n.nspname = 'public' AND c.relkind = 'S'"),
            "indexes": names("SELECT indexname FROM pg_indexes WHERE schemaname = 'public'"),
            "triggers": names("SELECT tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid"
                              " JOIN pg_namespace n ON n.oid = c.relnamespace"
                              " WHERE n.nspname = 'public' AND NOT t.tgisinternal"),
        }


@pytest.fixture
def empty_database(pg):
    name = pg.create_database("techserv_migrations")
    yield name
    pg.drop_database(name)


def test_upgrade_downgrade_base_upgrade(pg, empty_database):
    app = _app_for(pg, empty_database)
    url = pg.libpq_url_for(empty_database)
    with app.app_context():
        upgrade()
        built = _inventory(url)
        assert {"customers", "invoice_line_items", "accounts", "audit_events", "auth_tokens"} <= built["tables"]
        ours = {name for name in built["types"] if not name.startswith("procrastinate_")}
        assert len(ours) == 17 and len(built["sequences"]) >= 4
        assert {"update_ticket_hours", "set_first_response", "update_invoice_totals", "compute_invoice_tax",
                "portal_customer_id", "ticket_search_document"} <= built["functions"]

        downgrade(revision="base")
        left = _inventory(url)
        assert left["tables"] == {"alembic_version"}
        assert left["types"] == left["functions"] == left["sequences"] == left["triggers"] == set()
        assert left["indexes"] == {"alembic_version_pkc"}

        upgrade()
        assert _inventory(url) == built
        db.engine.dispose()


def test_models_and_migrations_agree(pg, empty_database):
    """Autogenerate finds nothing to do: the typed models describe exactly what the migrations build."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from portal.models.base import in_our_schema

    app = _app_for(pg, empty_database)
    with app.app_context():
        upgrade()
        engine = create_engine(pg.url_for(empty_database))
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True,
                                                                   "compare_server_default": True,
                                                                   "include_name": in_our_schema})
            assert compare_metadata(context, db.metadatas[None]) == []
        engine.dispose()
        db.engine.dispose()


def test_server_version_is_supported(pg):
    assert pg.server_version() >= 150000


def test_an_ordinary_role_migrates_when_an_administrator_made_the_contact_role(pg):
    """The README's production path: the app connects as a role that owns its database but may not
    create roles, and an administrator created `portal_contact` beforehand and granted it."""
    role = f"techserv_app_{uuid.uuid4().hex[:10]}"
    password = secrets.token_urlsafe(16)
    name = f"techserv_owned_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg.admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER NOCREATEROLE NOCREATEDB PASSWORD {}").format(
            sql.Identifier(role), sql.Literal(password)))
        conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(name), sql.Identifier(role)))
        conn.execute("DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'portal_contact') THEN"
                     " CREATE ROLE portal_contact NOLOGIN; END IF; END $$")
        conn.execute(sql.SQL("GRANT portal_contact TO {}").format(sql.Identifier(role)))
    try:
        url = make_url(pg.url_for(name)).set(username=role, password=password).render_as_string(hide_password=False)
        app = create_app({"TESTING": True, "SECRET_KEY": "x", "SQLALCHEMY_DATABASE_URI": url})
        with app.app_context():
            connected_as = db.session.execute(sa.text(
                "SELECT current_user, rolsuper, rolcreaterole FROM pg_roles WHERE rolname = current_user")).one()
            assert tuple(connected_as) == (role, False, False)
            db.session.remove()
            upgrade()
            head = ScriptDirectory.from_config(app.extensions["migrate"].migrate.get_config()).get_current_head()
            assert db.session.scalar(sa.text("SELECT version_num FROM alembic_version")) == head
            db.session.remove()
            downgrade(revision="base")  # leaves the administrator's role alone
            assert db.session.scalar(sa.text("SELECT count(*) FROM pg_roles WHERE rolname = 'portal_contact'")) == 1
            db.session.remove()
            db.engine.dispose()
    finally:
        pg.drop_database(name)
        with psycopg.connect(pg.admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


def _contact_rights(url: str) -> dict[str, set]:
    """What the contact role may do: the policies, its column grants, and the triggers and functions around them."""
    with psycopg.connect(url) as conn:
        def rows(sql):
            return {tuple(map(str, row)) for row in conn.execute(sql).fetchall()}

        return {
            "policies": rows("SELECT tablename, policyname, cmd, roles::text, coalesce(qual, ''),"
                             " coalesce(with_check, '') FROM pg_policies WHERE schemaname = 'public'"),
            "columns": rows("SELECT table_name, column_name, privilege_type FROM information_schema.column_privileges"
                            " WHERE grantee = 'portal_contact' AND table_schema = 'public'"),
            "functions": rows("SELECT p.proname, pg_get_functiondef(p.oid) FROM pg_proc p"
                              " JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'public'"),
            "triggers": rows("SELECT tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid"
                             " JOIN pg_namespace n ON n.oid = c.relnamespace"
                             " WHERE n.nspname = 'public' AND NOT t.tgisinternal"),
        }


def test_narrowing_the_contact_rights_downgrades_to_exactly_what_was_there(pg, empty_database):
    app = _app_for(pg, empty_database)
    url = pg.libpq_url_for(empty_database)
    with app.app_context():
        upgrade(revision="0007_customer_portal")
        before = _contact_rights(url)
        upgrade()
        after = _contact_rights(url)
        assert after != before
        assert ("project_phases", "phase_status", "UPDATE") not in after["columns"]
        downgrade(revision="0007_customer_portal")
        assert _contact_rights(url) == before
        db.engine.dispose()
