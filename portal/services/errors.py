"""The one way a service reports failure: a DomainError with a message and, where it applies, a field.

HTML views show the message beside the field (422); the API turns it into problem+json.
"""

from __future__ import annotations


class DomainError(Exception):
    status = 400
    title = "Request refused"

    def __init__(self, message: str, field: str | None = None, errors: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        self.errors = dict(errors or {})
        if field and field not in self.errors:
            self.errors[field] = message


class Invalid(DomainError):
    """The input breaks a rule; `field` names what to fix."""

    status = 422
    title = "Invalid input"


class NotFound(DomainError):
    """No such row, or one the actor may not see (the same answer on purpose)."""

    status = 404
    title = "Not found"


class Forbidden(DomainError):
    """The actor may not do this."""

    status = 403
    title = "Not allowed"


class Conflict(DomainError):
    """The row changed or already exists; reload and try again."""

    status = 409
    title = "Conflict"
