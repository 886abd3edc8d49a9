"""Webhooks: admins subscribe receiver URLs to events; every event is delivered, signed, by the worker.

- `jobs_for(session, event)` is asked by `events.emit` in the transaction of the change: one job
  per subscription that wants the event (queue "webhooks"), carrying the envelope
  `{id, type, created_at, data}`. A rolled-back change writes no job; a committed one is never lost.
- `deliver(...)` is the job's body, run by the worker: it records the delivery, POSTs the exact
  body once (10 s, no redirects, after checking where the host resolves to), records the attempt,
  and either marks it delivered, defers the next attempt (exponential backoff for 24 h), or marks
  it dead. The delivery's row is locked while it is sent and attempt numbers are unique, so two
  workers never send the same attempt twice.
- Each request carries the event id, a timestamp and `sha256=` HMAC-SHA256 of `timestamp.body`
  (Stripe's scheme) with the subscription's secret, and with the previous secret too while a
  rolled secret overlaps.

Secrets are stored as they must be used (the worker signs with them); encryption at rest comes
with issue 16.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import ipaddress
import json
import secrets
import socket
import ssl
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert

from portal.models import WebhookAttempt, WebhookDelivery, WebhookSubscription
from portal.services import clock, events, policy
from portal.services.errors import Forbidden, Invalid, NotFound

DELIVER_TASK = "webhook.deliver"

# The events a subscription can ask for: the seed's three, then the ones integrators need.
WEBHOOK_EVENTS: dict[str, str] = {
    "ticket.created": "A ticket was opened (ticket_id, customer_id, priority, assigned_employee_id)",
    "ticket.status_changed": "A ticket moved (from, to)",
    "ticket.assigned": "A ticket was assigned or unassigned",
    "contract.expiring": "A contract ends in 90, 60 or 30 days (contract_id, customer_id, end_date, "
                         "days_until_expiration)",
    "invoice.sent": "An invoice was sent to the customer",
    "invoice.paid": "An invoice was paid",
    "invoice.overdue": "An invoice is past its due date (invoice_id, customer_id, total_amount, days_overdue)",
    "time_entry.approved": "A time entry was approved",
    "phase.decided": "A customer's sponsor approved or rejected a project phase (decision)",
}
# Internal event names delivered under another webhook name.
ALIASES = {"phase.approved": "phase.decided", "phase.rejected": "phase.decided"}

SIGNATURE_HEADER = "X-TechServ-Signature"
TIMESTAMP_HEADER = "X-TechServ-Timestamp"
EVENT_ID_HEADER = "X-TechServ-Event-Id"
EVENT_TYPE_HEADER = "X-TechServ-Event-Type"
ATTEMPT_HEADER = "X-TechServ-Delivery-Attempt"
EXCERPT = 2000  # characters of a receiver's answer kept for the admin


@dataclass(frozen=True)
class Settings:
    allow_private: bool = False
    timeout: float = 10
    retry_schedule: tuple[int, ...] = ()
    disable_after: timedelta = timedelta(hours=72)
    secret_overlap: timedelta = timedelta(hours=24)

    @classmethod
    def from_config(cls, config) -> "Settings":
        return cls(allow_private=bool(config["WEBHOOK_ALLOW_PRIVATE_URLS"]),
                   timeout=float(config["WEBHOOK_TIMEOUT_SECONDS"]),
                   retry_schedule=tuple(config["WEBHOOK_RETRY_SCHEDULE"]),
                   disable_after=timedelta(hours=config["WEBHOOK_DISABLE_AFTER_HOURS"]),
                   secret_overlap=timedelta(hours=config["WEBHOOK_SECRET_OVERLAP_HOURS"]))


def webhook_type(event_name: str) -> str | None:
    name = ALIASES.get(event_name, event_name)
    return name if name in WEBHOOK_EVENTS else None


# --- in the change's transaction ---------------------------------------------------------------

def _targets(session, event_type: str) -> list[int]:
    """Subscriptions wanting `event_type`, read once per transaction (a bulk change emits many events).

    Through a SECURITY DEFINER function: a contact's transaction may learn which subscriptions
    exist, never read their secrets.
    """
    real = session() if isinstance(session, sa.orm.scoped_session) else session
    transaction = real.get_transaction()
    cache = real.info.get("webhook_targets")
    if cache is None or cache[0] is not transaction:
        cache = (transaction, {})
        real.info["webhook_targets"] = cache
    found = cache[1]
    if event_type not in found:
        found[event_type] = list(session.scalars(sa.select(sa.func.portal_webhook_targets(event_type))))
    return found[event_type]


def envelope(event_id: int, event_type: str, data: dict, created_at: datetime) -> dict:
    """What a receiver gets: `{id, type, created_at, data}`."""
    return {"id": f"evt_{event_id}", "type": event_type,
            "created_at": created_at.astimezone(clock.now().tzinfo).isoformat().replace("+00:00", "Z"),
            "data": data}


def jobs_for(session, event) -> list:
    """The delivery jobs of `event`: one per active subscription that wants it (none for most events)."""
    from portal.jobs.queue import Job

    event_type = webhook_type(event.name)
    if event_type is None or session is None:
        return []
    targets = _targets(session, event_type)
    if not targets:
        return []
    body = envelope(event.id, event_type, event.data, clock.now())
    return [Job(DELIVER_TASK, {"subscription_id": subscription_id, "event": body}, queue="webhooks")
            for subscription_id in targets]


# --- the receiver's address ---------------------------------------------------------------------

class UnsafeReceiver(Exception):
    """The URL is not one the worker may POST to."""


def _blocked(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return not address.is_global or address.is_multicast


def check_url_shape(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of an http(s) URL without credentials. :raises UnsafeReceiver: another URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeReceiver("Enter an http:// or https:// address with a host name.")
    if parts.username or parts.password:
        raise UnsafeReceiver("Leave user names and passwords out of the address: the signature authenticates us.")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise UnsafeReceiver("The port in the address is not a number from 1 to 65535.") from None
    return parts.scheme, parts.hostname, port


def resolve_receiver(url: str, *, allow_private: bool) -> tuple[str, str, int, str]:
    """(scheme, host, port, the address to connect to) after DNS resolution.

    :raises UnsafeReceiver: not http(s), the host does not resolve, or it resolves to a private,
        loopback, link-local or otherwise non-public address (unless `allow_private`).
    """
    scheme, host, port = check_url_shape(url)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, OSError):
        raise UnsafeReceiver(f"The host {host} does not resolve to an address.") from None
    addresses = [ipaddress.ip_address(info[4][0].split("%", 1)[0]) for info in infos]
    if not allow_private:
        for address in addresses:
            if _blocked(address):
                raise UnsafeReceiver(f"{host} resolves to {address}, a private, loopback or link-local address; "
                                     "webhooks go to public receivers only.")
    return scheme, host, port, str(addresses[0])


# --- signing and sending -------------------------------------------------------------------------

def signature(secret: str, timestamp: str, body: bytes) -> str:
    """`sha256=` and the hex HMAC-SHA256 of `timestamp.body` with `secret`."""
    return "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def signing_secrets(subscription: WebhookSubscription, now: datetime) -> list[str]:
    """The current secret, and the previous one while the roll's overlap lasts."""
    keys = [subscription.secret]
    if subscription.previous_secret and subscription.previous_secret_expires_at \
            and subscription.previous_secret_expires_at > now:
        keys.append(subscription.previous_secret)
    return keys


@dataclass(frozen=True)
class Outcome:
    status: int | None
    excerpt: str | None
    error: str | None
    duration_ms: int

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def post(url: str, body: bytes, headers: dict[str, str], settings: Settings) -> Outcome:
    """POST `body` once: no redirects followed, `settings.timeout` seconds at most, to the address
    checked after DNS resolution (the connection goes to that very address, so a second lookup
    cannot swap in another)."""
    started = time.monotonic()

    def outcome(status=None, excerpt=None, error=None) -> Outcome:
        return Outcome(status, excerpt, error, int((time.monotonic() - started) * 1000))

    try:
        scheme, host, port, address = resolve_receiver(url, allow_private=settings.allow_private)
    except UnsafeReceiver as refusal:
        return outcome(error=str(refusal))
    parts = urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    if scheme == "https":
        connection = http.client.HTTPSConnection(host, port, timeout=settings.timeout,
                                                 context=ssl.create_default_context())
    else:
        connection = http.client.HTTPConnection(host, port, timeout=settings.timeout)
    connection._create_connection = (  # connect to the checked address; TLS still verifies `host`
        lambda _address, timeout, source_address=None: socket.create_connection((address, port), timeout,
                                                                                 source_address))
    try:
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        text = response.read(EXCERPT).decode("utf-8", "replace")
        if time.monotonic() - started > settings.timeout:
            return outcome(error=f"The receiver took longer than {settings.timeout:g} s.")
        return outcome(status=response.status, excerpt=text)
    except (TimeoutError, socket.timeout):
        return outcome(error=f"No answer within {settings.timeout:g} s.")
    except (OSError, http.client.HTTPException, ssl.SSLError) as exc:
        return outcome(error=f"{type(exc).__name__}: {exc}"[:500])
    finally:
        connection.close()


def _record_delivery(session, subscription_id: int, event: dict) -> int | None:
    """The delivery of `event` to the subscription (made once, whoever runs its first job)."""
    event_id = int(str(event["id"]).removeprefix("evt_"))
    # The envelope's own order (the job's JSON arguments do not keep it).
    ordered = {key: event[key] for key in ("id", "type", "created_at", "data")}
    body = json.dumps(ordered, separators=(",", ":"), ensure_ascii=False)
    session.execute(insert(WebhookDelivery).values(
        subscription_id=subscription_id, event_id=event_id, event_type=event["type"], body=body)
        .on_conflict_do_nothing(constraint="uq_webhook_delivery_event"))
    return session.scalar(sa.select(WebhookDelivery.delivery_id).where(
        WebhookDelivery.subscription_id == subscription_id, WebhookDelivery.event_id == event_id))


def deliver(session, *, settings: Settings, now: datetime | None = None, subscription_id: int | None = None,
            event: dict | None = None, delivery_id: int | None = None, attempt: int = 1) -> str:
    """Run attempt `attempt` of a delivery (the worker's job body); returns what happened, in a word.

    Never raises for a receiver's failure: the attempt is recorded and the next one deferred in
    the same transaction, so a crash loses neither.
    """
    from portal.jobs.queue import Job, defer

    now = now or clock.now()
    if delivery_id is None:
        if session.get(WebhookSubscription, subscription_id) is None:
            return "unsubscribed"
        delivery_id = _record_delivery(session, subscription_id, event)
    delivery = session.scalar(sa.select(WebhookDelivery).where(WebhookDelivery.delivery_id == delivery_id)
                              .with_for_update(skip_locked=True))
    if delivery is None:
        return "busy"  # another worker is sending it right now (or it was deleted with its subscription)
    if delivery.status != "pending" or delivery.attempts >= attempt:
        return "done already"
    subscription = session.get(WebhookSubscription, delivery.subscription_id)
    if not subscription.is_active:
        delivery.status, delivery.dead_at = "dead", now
        delivery.last_error = "The subscription is disabled."
        return "dead"

    body = delivery.body.encode()
    timestamp = str(int(now.timestamp()))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "TechServ-Webhooks/1.0",
        EVENT_ID_HEADER: f"evt_{delivery.event_id}",
        EVENT_TYPE_HEADER: delivery.event_type,
        ATTEMPT_HEADER: str(attempt),
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: ", ".join(signature(key, timestamp, body) for key in signing_secrets(subscription, now)),
    }
    result = post(subscription.url, body, headers, settings)
    session.add(WebhookAttempt(delivery_id=delivery.delivery_id, attempt_number=attempt, started_at=now,
                               duration_ms=result.duration_ms, response_status=result.status,
                               response_excerpt=result.excerpt, error=result.error))
    delivery.attempts = attempt
    delivery.last_response_status = result.status
    delivery.last_error = result.error or (None if result.ok else f"The receiver answered {result.status}.")
    if result.ok:
        delivery.status, delivery.delivered_at, delivery.next_attempt_at = "delivered", now, None
        subscription.failing_since = None
        session.flush()
        return "delivered"

    if subscription.failing_since is None:
        subscription.failing_since = now
    schedule = settings.retry_schedule
    if attempt <= len(schedule):
        wait = schedule[attempt - 1]
        delivery.next_attempt_at = now + timedelta(seconds=wait)
        defer(session, [Job(DELIVER_TASK, {"delivery_id": delivery.delivery_id, "attempt": attempt + 1},
                            queue="webhooks", schedule_at=delivery.next_attempt_at if wait else None)])
        outcome = "retrying"
    else:
        delivery.status, delivery.dead_at, delivery.next_attempt_at = "dead", now, None
        outcome = "dead"
    if subscription.is_active and now - subscription.failing_since >= settings.disable_after:
        _disable(session, subscription, now)
    session.flush()
    return outcome


def _disable(session, subscription: WebhookSubscription, now: datetime) -> None:
    since = subscription.failing_since.astimezone(clock.business_zone()).strftime("%Y-%m-%d %H:%M %Z")
    subscription.is_active = False
    subscription.disabled_at = now
    subscription.disabled_reason = f"Every delivery failed since {since}."
    session.flush()
    events.emit(session, policy.Principal.system("webhooks"), "webhook.subscription_disabled", subscription,
                {"subscription_id": subscription.subscription_id, "url": subscription.url,
                 "reason": subscription.disabled_reason})


# --- the admin's side ----------------------------------------------------------------------------

def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def _require_admin(principal: policy.Principal) -> None:
    if not policy.may_administer(principal):
        raise Forbidden("Only administrators manage webhooks.")


def _checked_subscription(url: str, event_types: list[str], settings: Settings) -> tuple[str, list[str]]:
    errors = {}
    url = (url or "").strip()
    if not url:
        errors["url"] = "Enter the receiver's address."
    elif len(url) > 2000:
        errors["url"] = "The address can be at most 2,000 characters."
    else:
        try:
            resolve_receiver(url, allow_private=settings.allow_private)
        except UnsafeReceiver as refusal:
            errors["url"] = str(refusal)
    chosen = sorted(set(event_types or []))
    if not chosen:
        errors["event_types"] = "Choose at least one event."
    elif any(name not in WEBHOOK_EVENTS for name in chosen):
        errors["event_types"] = "Choose events from the list."
    if errors:
        first = next(iter(errors))
        raise Invalid(errors[first], first, errors)
    return url, chosen


def subscribe(session, principal: policy.Principal, url: str, event_types: list[str], *, description: str = "",
              settings: Settings) -> tuple[WebhookSubscription, str]:
    """Subscribe a receiver; returns it and its signing secret (shown to the admin once).

    :raises Forbidden: not an admin. :raises Invalid: a bad or non-public URL, or no known event.
    """
    _require_admin(principal)
    url, chosen = _checked_subscription(url, event_types, settings)
    secret = new_secret()
    subscription = WebhookSubscription(url=url, event_types=chosen, secret=secret,
                                       description=(description or "").strip()[:255] or None,
                                       created_by=principal.actor.label)
    session.add(subscription)
    session.flush()
    events.emit(session, principal, "webhook.subscribed", subscription,
                {"subscription_id": subscription.subscription_id}, changes={"url": (None, url),
                                                                             "event_types": (None, chosen)})
    return subscription, secret


def subscription_for(session, principal: policy.Principal, subscription_id: int, *, lock: bool = False
                     ) -> WebhookSubscription:
    """:raises Forbidden: not an admin. :raises NotFound: no such subscription."""
    _require_admin(principal)
    query = sa.select(WebhookSubscription).where(WebhookSubscription.subscription_id == subscription_id)
    subscription = session.scalar(query.with_for_update() if lock else query)
    if subscription is None:
        raise NotFound("No such webhook subscription.")
    return subscription


def roll_secret(session, principal: policy.Principal, subscription_id: int, *, settings: Settings,
                now: datetime | None = None) -> str:
    """A new signing secret; the old one keeps signing beside it for the overlap. Returns the new one.

    :raises Forbidden: not an admin. :raises NotFound: no such subscription.
    """
    now = now or clock.now()
    subscription = subscription_for(session, principal, subscription_id, lock=True)
    subscription.previous_secret = subscription.secret
    subscription.previous_secret_expires_at = now + settings.secret_overlap
    subscription.secret = new_secret()
    session.flush()
    events.emit(session, principal, "webhook.secret_rolled", subscription,
                {"subscription_id": subscription_id},
                changes={"previous_secret_expires_at": (None, subscription.previous_secret_expires_at)})
    return subscription.secret


def set_active(session, principal: policy.Principal, subscription_id: int, active: bool, *,
               now: datetime | None = None) -> WebhookSubscription:
    """Disable a subscription, or enable it again (its failure clock starts afresh).

    :raises Forbidden: not an admin. :raises NotFound: no such subscription.
    """
    subscription = subscription_for(session, principal, subscription_id, lock=True)
    before = subscription.is_active
    subscription.is_active = active
    subscription.disabled_at = None if active else (now or clock.now())
    subscription.disabled_reason = None if active else f"Disabled by {principal.actor.label}."
    subscription.failing_since = None if active else subscription.failing_since
    session.flush()
    events.emit(session, principal, "webhook.enabled" if active else "webhook.disabled", subscription,
                {"subscription_id": subscription_id}, changes={"is_active": (before, active)})
    return subscription


def subscriptions(session, principal: policy.Principal) -> list[tuple[WebhookSubscription, dict[str, int]]]:
    """Every subscription with its deliveries counted by status. :raises Forbidden: not an admin."""
    _require_admin(principal)
    counts: dict[int, dict[str, int]] = {}
    for subscription_id, status, number in session.execute(
            sa.select(WebhookDelivery.subscription_id, WebhookDelivery.status, sa.func.count())
            .group_by(WebhookDelivery.subscription_id, WebhookDelivery.status)):
        counts.setdefault(subscription_id, {})[status] = number
    rows = session.scalars(sa.select(WebhookSubscription).order_by(WebhookSubscription.subscription_id)).all()
    return [(row, counts.get(row.subscription_id, {})) for row in rows]


def deliveries(session, principal: policy.Principal, subscription_id: int, *, limit: int = 100
               ) -> list[WebhookDelivery]:
    """The subscription's latest deliveries, newest first, with their attempts (two queries)."""
    subscription_for(session, principal, subscription_id)
    return list(session.scalars(
        sa.select(WebhookDelivery).where(WebhookDelivery.subscription_id == subscription_id)
        .order_by(WebhookDelivery.delivery_id.desc()).limit(limit)
        .options(sa.orm.selectinload(WebhookDelivery.attempt_log))).all())


def resend(session, principal: policy.Principal, delivery_id: int, *, now: datetime | None = None) -> WebhookDelivery:
    """Send a delivery again now, as its next attempt (a dead one comes back to life).

    :raises Forbidden: not an admin. :raises NotFound: no such delivery.
    :raises Invalid: its subscription is disabled.
    """
    from portal.jobs.queue import Job, defer

    _require_admin(principal)
    delivery = session.scalar(sa.select(WebhookDelivery).where(WebhookDelivery.delivery_id == delivery_id)
                              .with_for_update())
    if delivery is None:
        raise NotFound("No such delivery.")
    if not delivery.subscription.is_active:
        raise Invalid("The subscription is disabled: enable it first.", "delivery_id")
    before = delivery.status
    delivery.status, delivery.dead_at = "pending", None
    delivery.next_attempt_at = now or clock.now()
    session.flush()
    defer(session, [Job(DELIVER_TASK, {"delivery_id": delivery.delivery_id, "attempt": delivery.attempts + 1},
                        queue="webhooks")])
    events.emit(session, principal, "webhook.resent", ("webhook_deliveries", delivery.delivery_id),
                {"delivery_id": delivery.delivery_id}, changes={"status": (before, "pending")})
    return delivery
