"""Password hashing (scrypt, through Werkzeug) and the minimum password rule."""

from __future__ import annotations

from werkzeug.security import check_password_hash, generate_password_hash
from zxcvbn import zxcvbn

from portal.services.errors import Invalid

MIN_LENGTH = 8
MAX_LENGTH = 256
MIN_STRENGTH = 3  # zxcvbn's 0-4 scale


def check_password_rules(password: str, field: str = "password", user_inputs: list[str] | None = None) -> None:
    """NIST 800-63B: at least 8 characters, no composition rules, and not a known or guessable password.

    zxcvbn estimates how guessable it is from common-password lists, dictionaries, keyboard
    patterns and the person's own name and email; anything it rates below 3 ("safely
    unguessable") is refused with its reason.
    :raises Invalid: the password is too short, too long or too easy to guess; the message says why.
    """
    if len(password) < MIN_LENGTH:
        raise Invalid(f"Use at least {MIN_LENGTH} characters; a short phrase is easiest to remember.", field)
    if len(password) > MAX_LENGTH:
        raise Invalid(f"Use at most {MAX_LENGTH} characters.", field)
    result = zxcvbn(password[:100], user_inputs=[i for i in (user_inputs or []) if i])
    if result["score"] < MIN_STRENGTH:
        warning = result["feedback"].get("warning") or "This password is too easy to guess."
        suggestion = " ".join(result["feedback"].get("suggestions") or [])
        raise Invalid(f"{warning.rstrip('.')}. {suggestion or 'Try a longer phrase of unrelated words.'}", field)


def hash_password(password: str) -> str:
    return generate_password_hash(password, method="scrypt")


def verify_password(password_hash: str | None, password: str) -> bool:
    """True when `password` matches. Without a hash (no account, or not set yet) it still spends the
    time of one check, so timing never tells whether an account exists."""
    if not password_hash:
        check_password_hash(_DUMMY_HASH, password or "")
        return False
    return check_password_hash(password_hash, password or "")


# Verified against when no account matches, so a wrong email takes as long as a wrong password.
_DUMMY_HASH = generate_password_hash("not a real password, only for timing", method="scrypt")
