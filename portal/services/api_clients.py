"""REST API clients: created and revoked by admins (or `flask api-client create`), their bearer
tokens, the per-client rate limit and the idempotency keys of their POSTs.

Secrets and tokens are random (256 bits) and stored only as their SHA-256: a slow password hash
adds nothing to a secret nobody can guess, and a token is checked on every request.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert

from portal.models import ApiClient, ApiIdempotencyKey, ApiRateWindow, ApiToken
from portal.services import clock, events, policy
from portal.services.errors import Forbidden, Invalid, NotFound

IDEMPOTENCY_HOURS = 24


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _require_admin(principal: policy.Principal) -> None:
    if not (policy.may_administer(principal) or principal.is_system):
        raise Forbidden("Only administrators manage API clients.")


def checked_scopes(scopes: list[str] | str) -> list[str]:
    """The scopes asked for, known ones only. :raises Invalid: none, or an unknown one (named)."""
    asked = scopes.split() if isinstance(scopes, str) else list(scopes)
    unknown = sorted(set(asked) - set(policy.API_SCOPES))
    if unknown:
        raise Invalid(f"Unknown scope {unknown[0]!r}; the scopes are: {', '.join(policy.API_SCOPES)}.", "scopes")
    if not asked:
        raise Invalid("Choose at least one scope.", "scopes")
    return sorted(set(asked))


def create_client(session, principal: policy.Principal, name: str, scopes: list[str] | str
                  ) -> tuple[ApiClient, str]:
    """A new client; returns it and its secret, which is shown once and stored only as a hash.

    :raises Forbidden: not an admin. :raises Invalid: no name, or unknown scopes.
    """
    _require_admin(principal)
    name = " ".join((name or "").split())
    errors = {}
    if not name:
        errors["name"] = "Name the client (the automation platform), like \u201cn8n production\u201d."
    elif len(name) > 100:
        errors["name"] = "The name can be at most 100 characters."
    try:
        chosen = checked_scopes(scopes)
    except Invalid as error:
        errors["scopes"] = error.message
    if errors:
        first = next(iter(errors))
        raise Invalid(errors[first], first, errors)
    secret = "tss_" + secrets.token_urlsafe(32)
    client = ApiClient(name=name, client_key="tsc_" + secrets.token_urlsafe(18), secret_hash=digest(secret),
                       scopes=chosen, created_by=principal.actor.label)
    session.add(client)
    session.flush()
    events.emit(session, principal, "api_client.created", client, {"client_id": client.client_id},
                changes={"name": (None, name), "scopes": (None, " ".join(chosen))})
    return client, secret


def clients(session, principal: policy.Principal) -> list[ApiClient]:
    """Every client, newest first. :raises Forbidden: not an admin."""
    _require_admin(principal)
    return list(session.scalars(sa.select(ApiClient).order_by(ApiClient.revoked_at.is_not(None),
                                                              ApiClient.client_id.desc())))


def revoke_client(session, principal: policy.Principal, client_id: int, *, now: datetime | None = None) -> ApiClient:
    """Revoke a client: its tokens stop working at once and no new one is issued.

    :raises Forbidden: not an admin. :raises NotFound: no such client.
    """
    _require_admin(principal)
    client = session.scalar(sa.select(ApiClient).where(ApiClient.client_id == client_id).with_for_update())
    if client is None:
        raise NotFound("No such API client.")
    if client.revoked_at is None:
        client.revoked_at = now or clock.now()
        session.execute(sa.delete(ApiToken).where(ApiToken.client_id == client_id))
        session.flush()
        events.emit(session, principal, "api_client.revoked", client, {"client_id": client_id},
                    changes={"revoked_at": (None, client.revoked_at)})
    return client


# --- OAuth 2.0 client credentials (the token endpoint is Authlib's: portal/api/oauth.py) -------------

def client_by_key(session, client_key: str) -> ApiClient | None:
    """A client that may get tokens (not revoked)."""
    return session.scalar(sa.select(ApiClient).where(ApiClient.client_key == client_key,
                                                     ApiClient.revoked_at.is_(None)))


def secret_matches(client: ApiClient, secret: str) -> bool:
    return hmac.compare_digest(client.secret_hash, digest(secret or ""))


def store_token(session, client: ApiClient, access_token: str, scopes: list[str], expires_in: int,
                now: datetime | None = None) -> ApiToken:
    """Keep the token's hash with its scopes and expiry (the token itself is handed out once)."""
    now = now or clock.now()
    token = ApiToken(client_id=client.client_id, token_hash=digest(access_token), scopes=scopes, issued_at=now,
                     expires_at=now + timedelta(seconds=expires_in))
    client.last_used_at = now
    session.add(token)
    # Expired tokens of this client go as new ones come: the table never grows without bound.
    session.execute(sa.delete(ApiToken).where(ApiToken.client_id == client.client_id, ApiToken.expires_at < now))
    session.flush()
    return token


@dataclass(frozen=True)
class TokenCheck:
    principal: policy.Principal | None
    problem: str | None  # why the token was refused (for WWW-Authenticate's error_description)


def principal_for_token(session, token: str, *, ip_address: str | None, now: datetime | None = None) -> TokenCheck:
    """The client a bearer token belongs to, as a principal with the token's scopes."""
    now = now or clock.now()
    row = session.execute(
        sa.select(ApiToken.scopes, ApiToken.expires_at, ApiClient.client_id, ApiClient.name, ApiClient.revoked_at)
        .join(ApiClient, ApiClient.client_id == ApiToken.client_id)
        .where(ApiToken.token_hash == digest(token))).first()
    if row is None or row.revoked_at is not None:
        return TokenCheck(None, "The access token is not valid.")
    if row.expires_at <= now:
        return TokenCheck(None, "The access token expired; get a new one from POST /api/oauth/token.")
    return TokenCheck(policy.Principal.api_client(row.client_id, row.name, set(row.scopes), ip_address), None)


# --- the rate limit (counted in PostgreSQL: app instances share nothing) -------------------------------

def count_request(connection, client_id: int, limit: int, now: datetime | None = None) -> int | None:
    """Count one request of the client in this minute; None when allowed, else seconds until the next minute.

    Runs on a connection of its own and commits at once, so one client's requests never wait for
    each other on the counter row, and refused requests count too.
    """
    now = now or clock.now()
    window = now.replace(second=0, microsecond=0)
    count = connection.execute(
        insert(ApiRateWindow).values(client_id=client_id, window_start=window, request_count=1)
        .on_conflict_do_update(index_elements=["client_id", "window_start"],
                               set_={"request_count": ApiRateWindow.request_count + 1})
        .returning(ApiRateWindow.request_count)).scalar_one()
    if count == 1:  # first request of a new minute: windows older than an hour go
        connection.execute(sa.delete(ApiRateWindow).where(ApiRateWindow.window_start < window - timedelta(hours=1)))
    if count <= limit:
        return None
    return max(1, 60 - now.second)


# --- idempotency keys ---------------------------------------------------------------------------------

def request_fingerprint(method: str, path: str, body: bytes) -> str:
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + body).hexdigest()


def remembered_answer(session, client_id: int, key: str, fingerprint: str, now: datetime | None = None
                      ) -> ApiIdempotencyKey | None:
    """The first answer to this key within 24 hours, if the same request was made with it.

    Waits for a request with the same key still running (the key's row lock).
    :raises Invalid: the key was used with another request.
    """
    now = now or clock.now()
    if not key or len(key) > 255:
        raise Invalid("An Idempotency-Key is 1 to 255 characters.", "Idempotency-Key")
    # Serialise requests with the same key: a second waits here until the first commits.
    session.execute(sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext(f"idem:{client_id}:{key}"))))
    row = session.get(ApiIdempotencyKey, (client_id, key), populate_existing=True)
    if row is None:
        return None
    if row.created_at < now - timedelta(hours=IDEMPOTENCY_HOURS):
        session.delete(row)
        session.flush()
        return None
    if row.request_hash != fingerprint:
        raise Invalid("This Idempotency-Key was used with another request in the last 24 hours; "
                      "use a new key for a new request.", "Idempotency-Key")
    return row


def remember_answer(session, client_id: int, key: str, fingerprint: str, status: int, body: str,
                    headers: dict[str, str]) -> None:
    """Keep the answer with the change it reports (same transaction)."""
    session.add(ApiIdempotencyKey(client_id=client_id, idempotency_key=key, request_hash=fingerprint,
                                  status_code=status, response_body=body, response_headers=headers))
    session.flush()
