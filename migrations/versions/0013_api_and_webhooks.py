"""The REST API and webhooks: API clients and their tokens (hashes only), idempotency keys, rate
windows, webhook subscriptions, deliveries and attempts; `updated_at` on every table the API lists.

- `updated_at` is added to contacts, support_tickets, time_entries and invoices, and the trigger
  `portal_touch_updated_at` keeps it (and the ORM-kept one of customers, service_contracts and
  projects) current on every UPDATE, including those made by other triggers and by contacts'
  requests, which may not write the column. The API lists are ordered by (updated_at, id) for
  cursor pagination and `updated_since`: an index each.
- Contacts read the new ticket column (their SELECT on support_tickets is per column since 0007).
- A contact's change can start webhook deliveries (a ticket opened in the portal is
  `ticket.created`): `portal_webhook_targets(event_type)` tells the emitting transaction which
  subscriptions want the event, without granting the contact's role the subscriptions (their
  secrets) themselves.

Revision ID: 0013_api_and_webhooks
Revises: 0016_secrets_at_rest
Create Date: 2026-11-30
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = "0013_api_and_webhooks"
down_revision = "0016_secrets_at_rest"
branch_labels = None
depends_on = None

NEW_UPDATED_AT = ["contacts", "support_tickets", "time_entries", "invoices"]
LISTED = {"customers": "customer_id", "contacts": "contact_id", "service_contracts": "contract_id",
          "support_tickets": "ticket_id", "time_entries": "entry_id", "invoices": "invoice_id",
          "projects": "project_id"}
INDEX_NAMES = {"customers": "idx_customers_updated", "contacts": "idx_contacts_updated",
               "service_contracts": "idx_contracts_updated", "support_tickets": "idx_tickets_updated",
               "time_entries": "idx_time_updated", "invoices": "idx_invoices_updated",
               "projects": "idx_projects_updated"}

TOUCH = """
CREATE FUNCTION portal_touch_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END;
$$;
"""

TARGETS = """
CREATE FUNCTION portal_webhook_targets(wanted text) RETURNS SETOF integer
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT subscription_id FROM webhook_subscriptions
    WHERE is_active AND wanted = ANY (event_types) ORDER BY subscription_id
$$;
REVOKE ALL ON FUNCTION portal_webhook_targets(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION portal_webhook_targets(text) TO portal_contact;
"""


def upgrade():
    op.create_table(
        "api_clients",
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("client_key", sa.String(length=64), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("scopes", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("created_by", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("name = btrim(name) AND name <> ''", name=op.f("chk_api_client_name")),
        sa.PrimaryKeyConstraint("client_id", name=op.f("api_clients_pkey")),
        sa.UniqueConstraint("client_key", name=op.f("api_clients_client_key_key")),
        sa.UniqueConstraint("name", name=op.f("api_clients_name_key")),
    )
    op.create_table(
        "api_tokens",
        sa.Column("token_id", sa.BigInteger(), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("scopes", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("expires_at > issued_at", name=op.f("chk_api_token_expiry")),
        sa.ForeignKeyConstraint(["client_id"], ["api_clients.client_id"], name=op.f("api_tokens_client_id_fkey"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("token_id", name=op.f("api_tokens_pkey")),
        sa.UniqueConstraint("token_hash", name=op.f("api_tokens_token_hash_key")),
    )
    op.create_index("idx_api_tokens_client", "api_tokens", ["client_id"])
    op.create_table(
        "api_idempotency_keys",
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=255), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("response_body", sa.Text(), nullable=False),
        sa.Column("response_headers", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["client_id"], ["api_clients.client_id"],
                                name=op.f("api_idempotency_keys_client_id_fkey"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("client_id", "idempotency_key", name=op.f("api_idempotency_keys_pkey")),
    )
    op.create_index("idx_api_idempotency_created", "api_idempotency_keys", ["created_at"])
    op.create_table(
        "api_rate_windows",
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("request_count", sa.Integer(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("client_id", "window_start", name=op.f("api_rate_windows_pkey")),
    )
    op.create_table(
        "webhook_subscriptions",
        sa.Column("subscription_id", sa.Integer(), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("description", sa.String(length=255), nullable=True),
        sa.Column("event_types", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("secret", sa.String(length=100), nullable=False),
        sa.Column("previous_secret", sa.String(length=100), nullable=True),
        sa.Column("previous_secret_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("is_active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("disabled_reason", sa.Text(), nullable=True),
        sa.Column("failing_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("url ~ '^https?://'", name=op.f("chk_webhook_url")),
        sa.CheckConstraint("cardinality(event_types) > 0", name=op.f("chk_webhook_events")),
        sa.CheckConstraint("(previous_secret IS NULL) = (previous_secret_expires_at IS NULL)",
                           name=op.f("chk_webhook_previous_secret")),
        sa.PrimaryKeyConstraint("subscription_id", name=op.f("webhook_subscriptions_pkey")),
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("delivery_id", sa.BigInteger(), nullable=False),
        sa.Column("subscription_id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.BigInteger(), nullable=False),
        sa.Column("event_type", sa.String(length=100), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=20), server_default="pending", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_response_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("dead_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("status IN ('pending', 'delivered', 'dead')", name=op.f("chk_webhook_delivery_status")),
        sa.CheckConstraint("attempts >= 0", name=op.f("chk_webhook_delivery_attempts")),
        sa.ForeignKeyConstraint(["subscription_id"], ["webhook_subscriptions.subscription_id"],
                                name=op.f("webhook_deliveries_subscription_id_fkey"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("delivery_id", name=op.f("webhook_deliveries_pkey")),
        sa.UniqueConstraint("subscription_id", "event_id", name="uq_webhook_delivery_event"),
    )
    op.create_index("idx_webhook_deliveries_subscription", "webhook_deliveries",
                    ["subscription_id", sa.text("delivery_id DESC")])
    op.create_table(
        "webhook_attempts",
        sa.Column("attempt_id", sa.BigInteger(), nullable=False),
        sa.Column("delivery_id", sa.BigInteger(), nullable=False),
        sa.Column("attempt_number", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=True),
        sa.Column("response_status", sa.Integer(), nullable=True),
        sa.Column("response_excerpt", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.CheckConstraint("attempt_number >= 1", name=op.f("chk_webhook_attempt_number")),
        sa.ForeignKeyConstraint(["delivery_id"], ["webhook_deliveries.delivery_id"],
                                name=op.f("webhook_attempts_delivery_id_fkey"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("attempt_id", name=op.f("webhook_attempts_pkey")),
        sa.UniqueConstraint("delivery_id", "attempt_number", name="uq_webhook_attempt_number"),
    )

    for table in NEW_UPDATED_AT:
        op.add_column(table, sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"),
                                       nullable=False))
    op.execute("GRANT SELECT (updated_at) ON support_tickets TO portal_contact")
    op.execute(TOUCH)
    for table, key in LISTED.items():
        op.execute(f"CREATE TRIGGER trg_{table}_touch BEFORE UPDATE ON {table} "
                   "FOR EACH ROW EXECUTE FUNCTION portal_touch_updated_at()")
        op.create_index(INDEX_NAMES[table], table, ["updated_at", key])
    op.execute(TARGETS)


def downgrade():
    op.execute("DROP FUNCTION portal_webhook_targets(text)")
    for table in LISTED:
        op.drop_index(INDEX_NAMES[table], table_name=table)
        op.execute(f"DROP TRIGGER trg_{table}_touch ON {table}")
    op.execute("DROP FUNCTION portal_touch_updated_at()")
    op.execute("REVOKE SELECT (updated_at) ON support_tickets FROM portal_contact")
    for table in NEW_UPDATED_AT:
        op.drop_column(table, "updated_at")
    op.drop_table("webhook_attempts")
    op.drop_index("idx_webhook_deliveries_subscription", table_name="webhook_deliveries")
    op.drop_table("webhook_deliveries")
    op.drop_table("webhook_subscriptions")
    op.drop_table("api_rate_windows")
    op.drop_index("idx_api_idempotency_created", table_name="api_idempotency_keys")
    op.drop_table("api_idempotency_keys")
    op.drop_index("idx_api_tokens_client", table_name="api_tokens")
    op.drop_table("api_tokens")
    op.drop_table("api_clients")
