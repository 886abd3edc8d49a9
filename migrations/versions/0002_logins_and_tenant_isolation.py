"""Logins (locks, two-factor, single-use links, throttling) and row-level security for contacts.

A contact's request runs its transactions as the NOLOGIN role `portal_contact` (SET LOCAL ROLE)
with `portal.customer_id` set to its customer (SET LOCAL). Every table holding a customer's data,
directly or through its parent, has row-level security enabled and forced, with a policy that
lets that role see its own customer's rows only (never internal notes, never draft invoices),
and lets every other role (the app's, for staff) see all. Superusers and table owners bypass
RLS, which is why contacts switch role rather than rely on FORCE alone.

Revision ID: 0002_logins_rls
Revises: 0001_seed_schema
Create Date: 2026-11-25
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = "0002_logins_rls"
down_revision = "0001_seed_schema"
branch_labels = None
depends_on = None

CONTACT_ROLE = "portal_contact"

# table -> the condition a contact's row must meet (portal_customer_id() is the contact's customer)
TENANT_POLICIES = {
    "customers": "customer_id = portal_customer_id()",
    "contacts": "customer_id = portal_customer_id()",
    "service_contracts": "customer_id = portal_customer_id()",
    "support_tickets": "customer_id = portal_customer_id()",
    "ticket_comments": "NOT is_internal AND EXISTS (SELECT 1 FROM support_tickets t "
                       "WHERE t.ticket_id = ticket_comments.ticket_id AND t.customer_id = portal_customer_id())",
    "projects": "customer_id = portal_customer_id()",
    "project_phases": "EXISTS (SELECT 1 FROM projects p WHERE p.project_id = project_phases.project_id "
                      "AND p.customer_id = portal_customer_id())",
    "time_entries": "customer_id = portal_customer_id()",
    "invoices": "customer_id = portal_customer_id() AND invoice_status <> 'draft'",
    "invoice_line_items": "EXISTS (SELECT 1 FROM invoices i WHERE i.invoice_id = invoice_line_items.invoice_id "
                          "AND i.customer_id = portal_customer_id() AND i.invoice_status <> 'draft')",
    "accounts": "contact_id IN (SELECT c.contact_id FROM contacts c WHERE c.customer_id = portal_customer_id())",
}

# What a contact's transaction may do at all; RLS then narrows it to the contact's customer.
GRANTS = [
    "GRANT SELECT ON customers, contacts, service_contracts, support_tickets, ticket_comments, projects,"
    " project_phases, time_entries, invoices, invoice_line_items, accounts TO portal_contact",
    "GRANT INSERT, UPDATE ON support_tickets, ticket_comments TO portal_contact",
    "GRANT UPDATE (first_name, last_name, phone, mobile, communication_preference, last_login)"
    " ON contacts TO portal_contact",
    "GRANT UPDATE (phase_status, approved_at, approved_by_contact_id) ON project_phases TO portal_contact",
    "GRANT UPDATE (password_hash, password_changed_at, session_version, last_login_at, failed_login_count,"
    " locked_until, updated_at) ON accounts TO portal_contact",
    # Contacts see who works their tickets, never what staff earn or cost.
    "GRANT SELECT (employee_id, first_name, last_name) ON employees TO portal_contact",
    "GRANT INSERT ON audit_events TO portal_contact",
    "GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO portal_contact",
]


def upgrade():
    op.create_table(
        "login_attempts",
        sa.Column("attempt_id", sa.BigInteger(), nullable=False),
        sa.Column("email", sa.String(length=255), nullable=False),
        sa.Column("ip_address", postgresql.INET(), nullable=True),
        sa.Column("succeeded", sa.Boolean(), nullable=False),
        sa.Column("attempted_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("attempt_id", name=op.f("login_attempts_pkey")),
    )
    op.create_index("idx_login_attempts_ip", "login_attempts", ["ip_address", "attempted_at"])
    op.create_index("idx_login_attempts_time", "login_attempts", ["attempted_at"])
    op.create_table(
        "portal_settings",
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("value", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_by", sa.String(length=255), nullable=True),
        sa.PrimaryKeyConstraint("key", name=op.f("portal_settings_pkey")),
    )
    op.create_table(
        "auth_tokens",
        sa.Column("token_id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("purpose", sa.String(length=20), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("purpose IN ('invitation', 'password_reset')", name=op.f("chk_token_purpose")),
        sa.CheckConstraint("expires_at > created_at", name=op.f("chk_token_expiry")),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.account_id"], name=op.f("auth_tokens_account_id_fkey"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("token_id", name=op.f("auth_tokens_pkey")),
        sa.UniqueConstraint("token_hash", name=op.f("auth_tokens_token_hash_key")),
    )
    op.create_index("idx_auth_tokens_account", "auth_tokens", ["account_id", "purpose"])
    op.add_column("accounts", sa.Column("password_changed_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("accounts", sa.Column("session_version", sa.Integer(), server_default="1", nullable=False))
    op.add_column("accounts", sa.Column("totp_secret", sa.String(length=64), nullable=True))
    op.add_column("accounts", sa.Column("totp_enabled_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("accounts", sa.Column("recovery_code_hashes", postgresql.JSONB(astext_type=sa.Text()),
                                        nullable=True))

    # Roles belong to the whole cluster (test databases share them): create it only once.
    op.execute(f"""
        DO $$ BEGIN
            CREATE ROLE {CONTACT_ROLE} NOLOGIN;
        EXCEPTION WHEN duplicate_object THEN NULL;
        END $$;
    """)
    # The app's own role must be allowed to SET ROLE to it (a superuser always may).
    op.execute(f"""
        DO $$ BEGIN
            IF NOT pg_has_role(current_user, '{CONTACT_ROLE}', 'MEMBER') THEN
                EXECUTE format('GRANT {CONTACT_ROLE} TO %I', current_user);
            END IF;
        END $$;
    """)
    op.execute("""
        CREATE FUNCTION portal_customer_id() RETURNS integer LANGUAGE sql STABLE AS
        $$ SELECT nullif(current_setting('portal.customer_id', true), '')::integer $$
    """)
    for table, condition in TENANT_POLICIES.items():
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY staff_all ON {table} USING (current_user <> '{CONTACT_ROLE}')"
                   f" WITH CHECK (current_user <> '{CONTACT_ROLE}')")
        op.execute(f"CREATE POLICY contact_own_customer ON {table} TO {CONTACT_ROLE}"
                   f" USING ({condition}) WITH CHECK ({condition})")
    op.execute("ALTER TABLE audit_events ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE audit_events FORCE ROW LEVEL SECURITY")
    op.execute(f"CREATE POLICY staff_all ON audit_events USING (current_user <> '{CONTACT_ROLE}')"
               f" WITH CHECK (current_user <> '{CONTACT_ROLE}')")
    op.execute(f"CREATE POLICY contact_writes_own_events ON audit_events FOR INSERT TO {CONTACT_ROLE}"
               " WITH CHECK (actor_type = 'contact')")
    for grant in GRANTS:
        op.execute(grant)


def downgrade():
    op.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {CONTACT_ROLE}")
    op.execute(f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {CONTACT_ROLE}")
    op.execute(f"REVOKE ALL (employee_id, first_name, last_name) ON employees FROM {CONTACT_ROLE}")
    for table in [*TENANT_POLICIES, "audit_events"]:
        op.execute(f"DROP POLICY IF EXISTS staff_all ON {table}")
        op.execute(f"DROP POLICY IF EXISTS contact_own_customer ON {table}")
        op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
    op.execute("DROP POLICY IF EXISTS contact_writes_own_events ON audit_events")
    op.execute("DROP FUNCTION portal_customer_id()")
    # The role is the cluster's: drop it only when no other database still grants it anything.
    op.execute(f"""
        DO $$ BEGIN
            IF NOT EXISTS (SELECT 1 FROM pg_shdepend d JOIN pg_roles r ON r.oid = d.refobjid
                           WHERE r.rolname = '{CONTACT_ROLE}') THEN
                DROP ROLE IF EXISTS {CONTACT_ROLE};
            END IF;
        END $$;
    """)
    for column in ("recovery_code_hashes", "totp_enabled_at", "totp_secret", "session_version",
                   "password_changed_at"):
        op.drop_column("accounts", column)
    op.drop_table("auth_tokens")
    op.drop_table("portal_settings")
    op.drop_table("login_attempts")
