"""One commit per request, in one place: every view runs inside `unit_of_work`.

The view parses, asks the policy, calls a service and renders its answer; it never commits or
rolls back. When it returns, the request's transaction commits once. When it raises, or the commit
fails, everything rolls back, and a database refusal the user caused (a CHECK, a unique key, a
value out of range, a row changed meanwhile) becomes the DomainError that names the field, which
the error handler of the surface answers (portal.web.errors).
"""

from __future__ import annotations

import functools

import sqlalchemy as sa
from flask import Flask
from sqlalchemy.orm.exc import StaleDataError

from portal.extensions import db
from portal.services.errors import Conflict, DomainError, Invalid
from portal.services.integrity import domain_error_for

OUT_OF_RANGE = ("A number or date in the request is out of range (too large, or not a real date). "
                "Check what you entered.")
CHANGED_MEANWHILE = "Someone else changed this in the meantime. Reload the page to see their change, then make yours again."


def as_domain_error(exc: BaseException) -> DomainError | None:
    """The DomainError a user should see for a database refusal, or None when it is a bug."""
    if isinstance(exc, StaleDataError):
        return Conflict(CHANGED_MEANWHILE)
    if isinstance(exc, sa.exc.DataError):
        return Invalid(OUT_OF_RANGE)
    if isinstance(exc, sa.exc.DBAPIError):
        return domain_error_for(exc)
    return None


def unit_of_work(view):
    """Run `view`, then commit once; roll back on any error (a user-caused database error becomes a DomainError)."""

    @functools.wraps(view)
    def run(*args, **kwargs):
        try:
            response = view(*args, **kwargs)
            db.session.commit()
            return response
        except DomainError:
            db.session.rollback()
            raise
        except (sa.exc.DBAPIError, StaleDataError) as exc:
            db.session.rollback()
            error = as_domain_error(exc)
            if error is None:
                raise
            raise error from exc
        except BaseException:
            db.session.rollback()
            raise

    run.unit_of_work = True
    return run


def discard() -> None:
    """Roll back what the request has not committed: for failures outside a view (a before-request
    hook, a teardown), which the unit of work does not wrap. Rolling back twice is harmless."""
    db.session.rollback()


def install_unit_of_work(app: Flask) -> None:
    """Wrap every view of the app (after all blueprints are registered)."""
    for endpoint, view in list(app.view_functions.items()):
        if endpoint != "static" and not getattr(view, "unit_of_work", False):
            app.view_functions[endpoint] = unit_of_work(view)
