"""The REST API's clients and tokens (hashes only), its idempotency keys and rate windows, and the
webhook subscriptions with the record of every delivery and attempt (the admin's log; the job rows
of the outbox carry the work itself)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.models.base import Base, created_at, updated_at
from portal.services.secrets_at_rest import EncryptedText

DELIVERY_STATUSES = ("pending", "delivered", "dead")


class ApiClient(Base):
    """An automation platform: OAuth 2.0 client credentials. Only the secret's sha256 is kept."""

    __tablename__ = "api_clients"
    __table_args__ = (
        sa.CheckConstraint("name = btrim(name) AND name <> ''", name="chk_api_client_name"),
    )

    client_id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(100), unique=True)
    # The public half of the credentials (OAuth's client_id), e.g. "tsc_3hK...".
    client_key: Mapped[str] = mapped_column(sa.String(64), unique=True)
    secret_hash: Mapped[str] = mapped_column(sa.String(64))
    scopes: Mapped[list[str]] = mapped_column(ARRAY(sa.Text))
    created_by: Mapped[str | None] = mapped_column(sa.String(255))
    created_at: Mapped[datetime] = created_at()
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]


class ApiToken(Base):
    """A bearer token issued to a client: its sha256, its scopes and when it expires."""

    __tablename__ = "api_tokens"
    __table_args__ = (
        sa.CheckConstraint("expires_at > issued_at", name="chk_api_token_expiry"),
        sa.Index("idx_api_tokens_client", "client_id"),
    )

    token_id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True)
    client_id: Mapped[int] = mapped_column(sa.ForeignKey("api_clients.client_id", ondelete="CASCADE"))
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    scopes: Mapped[list[str]] = mapped_column(ARRAY(sa.Text))
    issued_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())
    expires_at: Mapped[datetime]

    client: Mapped[ApiClient] = relationship()


class ApiIdempotencyKey(Base):
    """The first answer to a POST with an Idempotency-Key, kept 24 hours, stored with the change."""

    __tablename__ = "api_idempotency_keys"
    __table_args__ = (sa.Index("idx_api_idempotency_created", "created_at"),)

    client_id: Mapped[int] = mapped_column(sa.ForeignKey("api_clients.client_id", ondelete="CASCADE"),
                                           primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(sa.String(64))
    status_code: Mapped[int]
    response_body: Mapped[str] = mapped_column(sa.Text)
    response_headers: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = created_at()


class ApiRateWindow(Base):
    """Requests of one client in one minute, counted in PostgreSQL (app instances share nothing).

    No foreign key: the counter is written on a connection of its own, outside the request's
    transaction, so that counting never waits for another request of the same client.
    """

    __tablename__ = "api_rate_windows"

    client_id: Mapped[int] = mapped_column(primary_key=True)
    window_start: Mapped[datetime] = mapped_column(primary_key=True)
    request_count: Mapped[int] = mapped_column(server_default="0")


class WebhookSubscription(Base):
    """A receiver URL subscribed to event types, with the secret that signs its deliveries.

    The worker signs with the secret, so it is kept readable but encrypted at rest (EncryptedText,
    migration 0017); it is loaded only where a delivery is signed or a secret shown once. While a
    secret is rolled, the previous one also signs until its expiry.
    """

    __tablename__ = "webhook_subscriptions"
    __table_args__ = (
        sa.CheckConstraint("url ~ '^https?://'", name="chk_webhook_url"),
        sa.CheckConstraint("cardinality(event_types) > 0", name="chk_webhook_events"),
        sa.CheckConstraint("(previous_secret IS NULL) = (previous_secret_expires_at IS NULL)",
                           name="chk_webhook_previous_secret"),
    )

    subscription_id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(sa.String(2000))
    description: Mapped[str | None] = mapped_column(sa.String(255))
    event_types: Mapped[list[str]] = mapped_column(ARRAY(sa.Text))
    secret: Mapped[str] = mapped_column(EncryptedText(), deferred=True)
    previous_secret: Mapped[str | None] = mapped_column(EncryptedText(), deferred=True)
    previous_secret_expires_at: Mapped[datetime | None]
    is_active: Mapped[bool] = mapped_column(server_default=sa.true())
    disabled_at: Mapped[datetime | None]
    disabled_reason: Mapped[str | None] = mapped_column(sa.Text)
    failing_since: Mapped[datetime | None]
    created_by: Mapped[str | None] = mapped_column(sa.String(255))
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()


class WebhookDelivery(Base):
    """One event sent to one subscription: the exact body, its state and its attempts."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        sa.CheckConstraint("status IN ('pending', 'delivered', 'dead')", name="chk_webhook_delivery_status"),
        sa.CheckConstraint("attempts >= 0", name="chk_webhook_delivery_attempts"),
        sa.UniqueConstraint("subscription_id", "event_id", name="uq_webhook_delivery_event"),
        sa.Index("idx_webhook_deliveries_subscription", "subscription_id", sa.text("delivery_id DESC")),
    )

    delivery_id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True)
    subscription_id: Mapped[int] = mapped_column(
        sa.ForeignKey("webhook_subscriptions.subscription_id", ondelete="CASCADE"))
    event_id: Mapped[int] = mapped_column(sa.BigInteger)
    event_type: Mapped[str] = mapped_column(sa.String(100))
    body: Mapped[str] = mapped_column(sa.Text)
    status: Mapped[str] = mapped_column(sa.String(20), server_default="pending")
    attempts: Mapped[int] = mapped_column(server_default="0")
    last_response_status: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    next_attempt_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    dead_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = created_at()

    subscription: Mapped[WebhookSubscription] = relationship()
    attempt_log: Mapped[list[WebhookAttempt]] = relationship(
        order_by="WebhookAttempt.attempt_number", viewonly=True)


class WebhookAttempt(Base):
    """One POST of a delivery. Its number is unique per delivery: two workers never send one attempt twice."""

    __tablename__ = "webhook_attempts"
    __table_args__ = (
        sa.UniqueConstraint("delivery_id", "attempt_number", name="uq_webhook_attempt_number"),
        sa.CheckConstraint("attempt_number >= 1", name="chk_webhook_attempt_number"),
    )

    attempt_id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True)
    delivery_id: Mapped[int] = mapped_column(sa.ForeignKey("webhook_deliveries.delivery_id", ondelete="CASCADE"))
    attempt_number: Mapped[int]
    started_at: Mapped[datetime]
    duration_ms: Mapped[int | None]
    response_status: Mapped[int | None]
    response_excerpt: Mapped[str | None] = mapped_column(sa.Text)
    error: Mapped[str | None] = mapped_column(sa.Text)
