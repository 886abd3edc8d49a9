"""Errors under /api: application/problem+json (RFC 9457) for every error, with a message per field.

`problem(...)` builds the answer; portal.web.errors calls it for every HTTP error, DomainError and
unexpected error under /api, and the API's own refusals (401 with WWW-Authenticate, 403 for a
missing scope, 429 with Retry-After) raise `ApiProblem`. Field names of nested JSON are dotted
(`primary_contact.email`).
"""

from __future__ import annotations

import json
from typing import Any

from flask import Response, request

PROBLEM_TYPES = {
    400: "malformed-request", 401: "unauthorized", 403: "forbidden", 404: "not-found", 405: "method-not-allowed",
    409: "conflict", 413: "too-large", 415: "unsupported-media-type", 422: "invalid-input",
    429: "rate-limited", 500: "server-error",
}
TITLES = {400: "Malformed request", 401: "Unauthorized", 403: "Forbidden", 404: "Not found",
          405: "Method not allowed", 409: "Conflict", 413: "Request too large", 415: "Unsupported media type",
          422: "Invalid input", 429: "Too many requests", 500: "Internal server error"}


class ApiProblem(Exception):
    """A refusal of the API layer itself (authentication, scope, rate limit, preconditions)."""

    def __init__(self, status: int, detail: str, *, headers: dict[str, str] | None = None,
                 errors: dict[str, str] | None = None, extra: dict[str, Any] | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail
        self.headers = headers or {}
        self.errors = errors or {}
        self.extra = extra or {}


def problem(status: int, detail: str, *, title: str | None = None, errors: dict[str, str] | None = None,
            headers: dict[str, str] | None = None, extra: dict[str, Any] | None = None) -> Response:
    body: dict[str, Any] = {
        "type": f"/api/docs#problem-{PROBLEM_TYPES.get(status, 'error')}",
        "title": title or TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "instance": request.path,
    }
    if errors:
        body["errors"] = errors
    body.update(extra or {})
    response = Response(json.dumps(body), status=status, mimetype="application/problem+json")
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def flatten(messages: Any, prefix: str = "") -> dict[str, str]:
    """marshmallow's nested messages ({"primary_contact": {"email": ["..."]}}) as {"primary_contact.email": "..."}."""
    if isinstance(messages, dict):
        flat: dict[str, str] = {}
        for key, value in messages.items():
            name = prefix if key == "_schema" and prefix else (f"{prefix}.{key}" if prefix else str(key))
            if key == "_schema" and not prefix:
                name = "body"
            flat.update(flatten(value, name))
        return flat
    if isinstance(messages, list):
        if all(isinstance(item, str) for item in messages):
            return {prefix or "body": " ".join(messages)}
        flat = {}
        for item in messages:
            flat.update(flatten(item, prefix))
        return flat
    return {prefix or "body": str(messages)}


def validation_problem(detail: Any) -> Response:
    """APIFlask's validation error ({"json": {...}} or {"query": {...}}) as a 422 with field messages."""
    errors: dict[str, str] = {}
    for location, messages in (detail or {}).items():
        flat = flatten(messages)
        if location == "json" and list(flat) == ["body"] and "Invalid input type" in flat["body"]:
            flat = {"body": "The body must be a JSON object."}
        errors.update(flat)
    first = next(iter(errors.items()), ("body", "The request is not valid."))
    return problem(422, f"{first[0]}: {first[1]}" if first[0] != "body" else first[1], errors=errors)
