"""TechServ Portal: the application factory."""

from __future__ import annotations

import logging
import os
from datetime import timedelta
from pathlib import Path

from apiflask import APIFlask
from flask import Flask, redirect, request
from werkzeug.exceptions import HTTPException, NotFound
from werkzeug.routing import IntegerConverter

from portal.config import ConfigurationError, database_url, settings_from_environment
from portal.extensions import csrf, db, mailer, migrate
from portal.models.base import in_our_schema
from portal.services import clock

ROOT = Path(__file__).resolve().parent.parent


# The pages that take attachments (portal.services.attachments: 5 files of 10 MB).
UPLOAD_ENDPOINTS = frozenset({"portal.new_ticket", "portal.reply_to_ticket"})


def create_app(config: dict | None = None) -> Flask:
    """Build the app. `config` overrides the environment (tests pass their database URL)."""
    # APIFlask is Flask with the REST API's schemas and OpenAPI document (portal/api); the pages
    # keep their HTML errors (json_errors=False), and the document is served by the API itself.
    app = APIFlask(
        __name__,
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
        # INSTANCE_PATH moves the instance folder (embedded database, secret key) elsewhere.
        instance_path=os.path.abspath(os.environ.get("INSTANCE_PATH") or ROOT / "instance"),
        title="TechServ Portal API", version="1.0", json_errors=False, spec_path=None, docs_path=None,
        enable_openapi=True,
    )
    app.config.update(settings_from_environment())
    app.config.update(
        SQLALCHEMY_ENGINE_OPTIONS={"pool_pre_ping": True},
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        # Any form; the pages that take attachments allow more (UPLOAD_MAX_CONTENT_LENGTH). Bigger is a 413.
        MAX_CONTENT_LENGTH=1024 * 1024,
        # Up to five attachments of 10 MB each and the form around them.
        UPLOAD_MAX_CONTENT_LENGTH=51 * 1024 * 1024,
        PERMANENT_SESSION_LIFETIME=timedelta(hours=8),
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the session
    )
    if config:
        app.config.update(config)
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = _instance_secret_key(Path(app.instance_path))
    if not app.config.get("ATTACHMENTS_PATH"):
        app.config["ATTACHMENTS_PATH"] = os.path.join(app.instance_path, "attachments")
    if not app.config.get("SQLALCHEMY_DATABASE_URI"):
        app.config["SQLALCHEMY_DATABASE_URI"] = database_url(app.config, app.instance_path)
    clock.set_business_zone(app.config["DISPLAY_TIMEZONE"])

    if not app.debug and not app.testing:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    if app.config.get("TRUST_PROXY_HEADERS"):
        from werkzeug.middleware.proxy_fix import ProxyFix

        hops = app.config["TRUST_PROXY_HEADERS"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)

    app.url_map.converters["int"] = BoundedInt  # ids beyond PostgreSQL's integer are 404, not 500
    db.init_app(app)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"), compare_type=True, render_as_batch=False,
                     include_name=in_our_schema)
    _init_operations(app)

    @app.before_request
    def drop_trailing_slash():
        """/staff/customers/ is /staff/customers: a GET that matches no route only by its trailing slash
        is sent to the route without it (308), as Werkzeug already does the other way round."""
        path = request.path
        if not (isinstance(request.routing_exception, NotFound) and request.method in ("GET", "HEAD")
                and len(path) > 1 and path.endswith("/") and not path.startswith("//")):
            return None
        try:
            app.create_url_adapter(request).match(path.rstrip("/"), method=request.method)
        except HTTPException:
            return None
        query = request.query_string.decode()
        return redirect(request.script_root + path.rstrip("/") + (f"?{query}" if query else ""), code=308)

    @app.before_request
    def allow_uploads():
        # Before the CSRF check, which is the first to read the form.
        if request.endpoint in UPLOAD_ENDPOINTS:
            request.max_content_length = app.config["UPLOAD_MAX_CONTENT_LENGTH"]

    csrf.init_app(app)
    mailer.init_app(app)

    import portal.models  # noqa: F401  (registers every table on the metadata)
    from portal.cli import register_cli
    from portal.web import register_blueprints
    from portal.web.errors import register_error_handlers

    from portal.web.formatting import register_filters
    from portal.web.security import init_security

    init_security(app)
    register_filters(app)
    register_blueprints(app)
    register_error_handlers(app)
    register_cli(app)
    return app


def _init_operations(app: Flask) -> None:
    """The keys of the secrets encrypted at rest, and the slow-query watch, on the app's engines."""
    from portal.services import secrets_at_rest, slow_queries

    with app.app_context():
        engines = list(db.engines.values())
    try:
        secrets_at_rest.init_app(app, engines)
    except ValueError as error:
        raise ConfigurationError(str(error)) from None
    slow_queries.install(app, engines)


class BoundedInt(IntegerConverter):
    """`<int:...>` in URLs, limited to what an `integer` column holds."""

    def __init__(self, map, *args, **kwargs):
        kwargs.setdefault("max", 2**31 - 1)
        super().__init__(map, *args, **kwargs)


def _instance_secret_key(instance: Path) -> str:
    """A random key kept in the instance folder, so a developer needs no SECRET_KEY.

    Production sets SECRET_KEY (every app instance must share it; see the README).
    :raises ConfigurationError: the instance folder cannot be created or written.
    """
    import secrets

    keyfile = instance / "secret_key"
    try:
        instance.mkdir(parents=True, exist_ok=True)
        if not keyfile.exists():
            keyfile.write_text(secrets.token_urlsafe(48))
            keyfile.chmod(0o600)
        return keyfile.read_text().strip()
    except OSError as exc:
        raise ConfigurationError(
            f"the instance folder {instance} cannot be used ({exc.strerror or exc}). "
            "Point INSTANCE_PATH at a writable folder, or set SECRET_KEY and DATABASE_URL."
        ) from None
