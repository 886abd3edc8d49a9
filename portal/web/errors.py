"""Error answers for the pages: the portal's error page, and a service's DomainError shown where it belongs.

A view never catches a DomainError. It names, with `@error_page(render)`, how to show one: `render`
gets the error and the view's URL arguments and answers the page (or, for htmx, the fragment) with
the message beside its field; the handler here sets the status (422 invalid, 409 conflict) and,
for htmx, a toast. A refusal (403) and a missing row (404) get the error page whatever the view.
Under /api/ every error is problem+json (RFC 9457).
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask, current_app, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from portal.services.errors import DomainError, Forbidden, NotFound
from portal.services.secrets_at_rest import EncryptionKeysError
from portal.web.rendering import is_htmx, render, with_toast

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


KEYS_WHAT_NEXT = ("The portal cannot read or write a stored secret: its ENCRYPTION_KEYS setting lacks the key. "
                  "Nothing was saved. Tell your administrator.")


def error_page(render_error: Callable[..., object], *, toast: bool = True):
    """Name how a view shows a DomainError: `render_error(error, **view_args)` answers the page with it.

    `toast=False` when the page already shows the message where the reader looks (beside a field
    on a small form), so a toast would only cover it on a phone.
    """

    def decorator(view):
        view.render_error = render_error
        view.error_toast = toast
        return view

    return decorator


def _problem(status: int, title: str | None, detail: str, errors: dict[str, str] | None = None):
    from portal.api.problems import problem

    return problem(status, detail, title=title, errors=errors)


def _is_api() -> bool:
    return request.path.startswith("/api/")


def error_response(code: int, title: str, what_next: str):
    """The error page (or problem+json under /api/) with `what_next` telling the reader what to do."""
    if _is_api():
        return _problem(code, title, what_next)
    response = render("errors/error.html", status=code, code=code, title=title, what_next=what_next)
    return with_toast(response, what_next, "error") if is_htmx() else response


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        code = exc.code or 500
        if code == 413 and not _is_api():
            from portal.web.portal.tickets import upload_refused_page

            page = upload_refused_page()  # the upload form again, the reason beside its file field
            if page is not None:
                return page
        what_next = WHAT_NEXT.get(code, exc.description)
        if isinstance(exc, CSRFError):
            what_next = "The form had expired or came from another site, so nothing was saved. Reload the page and try again."
        elif code in (403, 400, 409) and exc.description and exc.description != type(exc).description:
            what_next = exc.description  # a specific reason given by the view
        if _is_api():
            detail = exc.description or what_next
            if code == 400 and request.mimetype == "application/json":
                detail = "The body is not valid JSON."
            elif code == 413:
                detail = "The request body is larger than 1 MB."
            response = _problem(code, None, detail)
            if code == 405 and getattr(exc, "valid_methods", None):
                response.headers["Allow"] = ", ".join(exc.valid_methods)
            return response
        return render("errors/error.html", status=code, code=code, title=exc.name, what_next=what_next)

    @app.errorhandler(DomainError)
    def domain_error(error: DomainError):
        if _is_api():
            return _problem(error.status, None, error.message, error.errors)
        if isinstance(error, NotFound):
            return error_response(404, "Not Found", WHAT_NEXT[404])
        if isinstance(error, Forbidden):
            return error_response(403, "Forbidden", error.message)
        view = current_app.view_functions.get(request.endpoint or "")
        render_error = getattr(view, "render_error", None)
        if render_error is None:
            return error_response(error.status, error.title, error.message)
        response = current_app.make_response(render_error(error, **(request.view_args or {})))
        response.status_code = error.status
        if is_htmx() and getattr(view, "error_toast", True):
            return with_toast(response, error.message, "error")
        return response

    @app.errorhandler(EncryptionKeysError)
    def keys_error(error: EncryptionKeysError):
        from portal.web.unit_of_work import discard

        # The operator's to fix (ENCRYPTION_KEYS), not the reader's: logged with the setting's name, 503.
        app.logger.error("%s %s: %s", request.method, request.path, error)
        discard()
        return error_response(503, "Service Unavailable", KEYS_WHAT_NEXT)

    @app.errorhandler(Exception)
    def unexpected_error(exc: Exception):
        from portal.web.unit_of_work import discard

        if isinstance(getattr(exc, "orig", None), EncryptionKeysError):  # raised while a flush encrypted a value
            return keys_error(exc.orig)
        app.logger.exception("Unhandled error on %s %s", request.method, request.path)
        discard()  # a view's failure is rolled back already; one outside a view is not
        return error_response(500, "Internal Server Error", WHAT_NEXT[500])
