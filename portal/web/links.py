"""Absolute links for mails and webhooks, always to PUBLIC_BASE_URL: never built from a request's
Host or X-Forwarded-Host header, which a client chooses (a reset link pointed at another site)."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import current_app

from portal.config import public_base_url


def public_url(endpoint: str, anchor: str | None = None, **values) -> str:
    """The absolute URL of `endpoint` on the portal's public address (works outside a request too)."""
    base = urlsplit(public_base_url(current_app.config))
    adapter = current_app.url_map.bind(base.netloc, script_name=base.path or "/", url_scheme=base.scheme)
    url = adapter.build(endpoint, values, force_external=True)
    return f"{url}#{anchor}" if anchor else url
