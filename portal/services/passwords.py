"""Password hashing (scrypt, through Werkzeug) and the minimum password rule."""

from __future__ import annotations

from werkzeug.security import check_password_hash, generate_password_hash

from portal.services.errors import Invalid

MIN_LENGTH = 8
MAX_LENGTH = 256


def check_password_rules(password: str, field: str = "password") -> None:
    """:raises Invalid: the password is too short or too long (NIST 800-63B lengths)."""
    if len(password) < MIN_LENGTH:
        raise Invalid(f"Use at least {MIN_LENGTH} characters; a short phrase is easiest to remember.", field)
    if len(password) > MAX_LENGTH:
        raise Invalid(f"Use at most {MAX_LENGTH} characters.", field)


def hash_password(password: str) -> str:
    return generate_password_hash(password, method="scrypt")


def verify_password(password_hash: str | None, password: str) -> bool:
    return bool(password_hash) and check_password_hash(password_hash, password)
