"""Error pages in the portal's look (HTML) and problem+json for the API."""

from __future__ import annotations

from flask import Flask, request
from flask_wtf.csrf import CSRFError
import sqlalchemy as sa
from sqlalchemy.orm.exc import StaleDataError
from werkzeug.exceptions import BadRequest, Conflict, HTTPException

from portal import UPLOAD_ENDPOINTS
from portal.web.rendering import render

WHAT_NEXT = {
    400: "The request could not be understood. Go back, reload the page and try again.",
    403: "Your account may not open this page. If you think it should, ask your administrator.",
    404: "Nothing is here. Check the address, or start again from the home page.",
    405: "This address does not accept that kind of request. Go back and use the page's buttons.",
    409: "Someone else changed this in the meantime. Reload the page and try again.",
    413: "The upload is too large. Try a smaller file.",
    422: "Some of what you entered needs fixing. Go back and check the form.",
    500: "Something went wrong on our side. Nothing you entered was saved; try again in a minute.",
}


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        code = exc.code or 500
        if request.path.startswith("/api/"):
            return (
                {"type": "about:blank", "title": exc.name, "status": code, "detail": exc.description},
                code,
                {"Content-Type": "application/problem+json"},
            )
        if code == 413 and request.endpoint in UPLOAD_ENDPOINTS:
            from portal.web.customer import upload_refused_page

            page = upload_refused_page()  # the form again, the reason beside its file field
            if page is not None:
                return page
        what_next = WHAT_NEXT.get(code, exc.description)
        if isinstance(exc, CSRFError):
            what_next = "The form had expired or came from another site, so nothing was saved. Reload the page and try again."
        elif code in (403, 400, 409) and exc.description and exc.description != type(exc).description:
            what_next = exc.description  # a specific reason given by the view
        return render("errors/error.html", status=code, code=code, title=exc.name, what_next=what_next)

    @app.errorhandler(sa.exc.DataError)
    def value_out_of_range(exc):
        # A number or date beyond what the database holds (an id of 2**31, say): the user's input.
        from portal.extensions import db

        db.session.rollback()
        return http_error(BadRequest("A number or date in the request is out of range. Go back and check "
                                     "what you entered."))

    @app.errorhandler(StaleDataError)
    def changed_meanwhile(exc):
        # The ORM's optimistic lock: someone else's change got in between.
        from portal.extensions import db

        db.session.rollback()
        return http_error(Conflict("Someone else changed this in the meantime. Reload the page to see "
                                   "their change, then make yours again."))

    @app.errorhandler(Exception)
    def unexpected_error(exc: Exception):
        from portal.extensions import db

        app.logger.exception("Unhandled error on %s %s", request.method, request.path)
        db.session.rollback()
        if request.path.startswith("/api/"):
            return (
                {"type": "about:blank", "title": "Internal Server Error", "status": 500,
                 "detail": WHAT_NEXT[500]},
                500,
                {"Content-Type": "application/problem+json"},
            )
        return render("errors/error.html", status=500, code=500, title="Internal Server Error",
                      what_next=WHAT_NEXT[500])
