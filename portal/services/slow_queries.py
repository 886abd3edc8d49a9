"""The slow-query watch: statements slower than SLOW_QUERY_MS are logged with where they ran (the
route, the worker's job or the command) and the shapes of their parameters, never their values;
and the slowest statements PostgreSQL itself counted (pg_stat_statements), for the admins' page.

`install(app, engines)` is called by create_app (never at import), so every app times only its
own engines and a test can set its own threshold.
"""

from __future__ import annotations

import contextvars
import logging
import re
import time
from dataclasses import dataclass
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy import event

log = logging.getLogger("portal.slow_query")

# What runs outside a request: the worker's job (runner.run_in_app sets it) or a command.
current_job: contextvars.ContextVar[str | None] = contextvars.ContextVar("current_job", default=None)

_MAX_STATEMENT = 2000  # characters of SQL text in one log line (the text has placeholders, no values)
# A connection whose `info` holds this key is not watched: the migrations' (migrations/env.py), whose
# one-off DDL is slow by nature and would bury a newcomer's first `flask demo` in warnings.
UNWATCHED = "slow_query_watch_off"


def install(app, engines) -> None:
    """Time every statement on `engines` and log those over the app's SLOW_QUERY_MS (0: off)."""
    threshold_ms = int(app.config.get("SLOW_QUERY_MS") or 0)
    if threshold_ms <= 0:
        return
    threshold = threshold_ms / 1000

    def before(conn, cursor, statement, parameters, context, executemany):
        if not conn.info.get(UNWATCHED):
            conn.info.setdefault("portal_query_started", []).append(time.perf_counter())

    def after(conn, cursor, statement, parameters, context, executemany):
        started = conn.info.get("portal_query_started")
        if not started or conn.info.get(UNWATCHED):
            return
        elapsed = time.perf_counter() - started.pop()
        if elapsed >= threshold:
            log.warning("Slow query: %d ms (over %d ms) in %s: %s -- parameters: %s", round(elapsed * 1000),
                        threshold_ms, where(), one_line(statement), parameter_shapes(parameters, executemany))

    def failed(exception_context):
        connection = exception_context.connection
        if connection is not None and connection.info.get("portal_query_started"):
            connection.info["portal_query_started"].pop()

    for engine in engines:
        event.listen(engine, "before_cursor_execute", before)
        event.listen(engine, "after_cursor_execute", after)
        event.listen(engine, "handle_error", failed)


def where() -> str:
    """The route (its rule, not the path: a path may hold ids and search words), the job, or the command."""
    from flask import has_request_context, request

    if has_request_context() and request.url_rule is not None:
        return f"route {request.method} {request.url_rule.rule} ({request.endpoint})"
    job = current_job.get()
    if job:
        return f"job {job}"
    try:
        import click

        context = click.get_current_context(silent=True)
    except Exception:  # pragma: no cover - click is Flask's own dependency
        context = None
    if context is not None and context.command_path:
        return f"command {context.command_path}"
    return "no route (outside a request, job or command)"


def one_line(statement: str) -> str:
    text = re.sub(r"\s+", " ", statement).strip()
    return text if len(text) <= _MAX_STATEMENT else text[:_MAX_STATEMENT] + "..."


def shape(value) -> str:
    """What a parameter is, without what it holds: its type, and the size of a collection."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (list, tuple, set, frozenset)):
        return f"{type(value).__name__}[{len(value)}]"
    if isinstance(value, dict):
        return f"dict[{len(value)}]"
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "bytes"
    if isinstance(value, Decimal):
        return "decimal"
    return type(value).__name__


def parameter_shapes(parameters, executemany: bool = False) -> str:
    if executemany and isinstance(parameters, (list, tuple)):
        first = parameter_shapes(parameters[0]) if parameters else "{}"
        return f"{len(parameters)} rows of {first}"
    if isinstance(parameters, dict):
        return "{" + ", ".join(f"{name}: {shape(value)}" for name, value in parameters.items()) + "}"
    if isinstance(parameters, (list, tuple)):
        return "(" + ", ".join(shape(value) for value in parameters) + ")"
    return "none" if parameters is None else shape(parameters)


# --- pg_stat_statements --------------------------------------------------------------------

HOW_TO_ENABLE = (
    "add pg_stat_statements to shared_preload_libraries in postgresql.conf (for example "
    "shared_preload_libraries = 'pg_stat_statements'), restart PostgreSQL, then run "
    "CREATE EXTENSION pg_stat_statements; as a superuser in the portal's database. Give the portal's "
    "role pg_read_all_stats to see the text of every role's statements."
)


@dataclass(frozen=True)
class SlowStatement:
    query: str
    calls: int
    mean_ms: float
    max_ms: float
    total_ms: float
    rows: int


@dataclass(frozen=True)
class SlowestStatements:
    available: bool
    reason: str | None  # why not, when not available
    statements: list[SlowStatement]


def slowest_statements(session, limit: int = 25) -> SlowestStatements:
    """The statements of this database with the highest mean time, from pg_stat_statements when it is
    installed here and loaded by the server; otherwise why not."""
    libraries, installed = session.execute(sa.text(
        "SELECT current_setting('shared_preload_libraries'),"
        " (SELECT count(*) FROM pg_extension WHERE extname = 'pg_stat_statements')")).one()
    loaded = "pg_stat_statements" in (libraries or "")
    if not loaded:
        return SlowestStatements(False, "PostgreSQL does not load pg_stat_statements (shared_preload_libraries).", [])
    if not installed:
        return SlowestStatements(False, "The pg_stat_statements extension is not created in this database.", [])
    rows = session.execute(sa.text(
        "SELECT query, calls, mean_exec_time, max_exec_time, total_exec_time, rows FROM pg_stat_statements"
        " WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
        " ORDER BY mean_exec_time DESC LIMIT :limit"), {"limit": limit}).all()
    return SlowestStatements(True, None, [
        SlowStatement(one_line(query or ""), calls, float(mean), float(most), float(total), count)
        for query, calls, mean, most, total, count in rows])
