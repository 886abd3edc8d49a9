"""One view, two answers: the whole page, or the named block when htmx asks (HX-Request)."""

from __future__ import annotations

import json

from flask import make_response, render_template, request
from jinja2_fragments.flask import render_block


def render(template: str, block: str | None = None, status: int = 200, **context):
    """Render `template`, or only `block` of it for an htmx request; always `Vary: HX-Request`."""
    if block and is_htmx():
        body = render_block(template, block, **context)
    else:
        body = render_template(template, **context)
    response = make_response(body, status)
    response.vary.add("HX-Request")
    return response


def is_htmx() -> bool:
    """An htmx request that swaps a part of the page (a history restore wants the whole page)."""
    return (request.headers.get("HX-Request") == "true"
            and request.headers.get("HX-History-Restore-Request") != "true")


def with_toast(response, message: str, level: str = "success"):
    """Ask the page to show `message` as a toast (portal.js listens for showToast)."""
    response.headers["HX-Trigger"] = json.dumps({"showToast": {"message": message, "level": level}})
    return response


def after_change(message: str, redirect_to: str, fragment=None):
    """The answer to a change that worked: the updated fragment and a toast for htmx (when the
    view has one), else a flash message and a redirect to a GET (post/redirect/get)."""
    from flask import flash, redirect

    if fragment is not None and is_htmx():
        return with_toast(fragment(), message)
    flash(message, "success")
    return redirect(redirect_to, code=303)
