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

CUSTOMER = "portal_customer_id()"
CONTACT = "portal_contact_id()"
TICKET_OF_CUSTOMER = ("EXISTS (SELECT 1 FROM support_tickets t WHERE t.ticket_id = {table}.ticket_id"
                      f" AND t.customer_id = {CUSTOMER})")
PROJECT_OF_CUSTOMER = ("EXISTS (SELECT 1 FROM projects p WHERE p.project_id = project_phases.project_id"
                       f" AND p.customer_id = {CUSTOMER})")

# table -> the rows a contact may read (its customer's; never internal notes or draft invoices)
READ_POLICIES = {
    "customers": f"customer_id = {CUSTOMER}",
    "contacts": f"customer_id = {CUSTOMER}",
    "service_contracts": f"customer_id = {CUSTOMER}",
    "support_tickets": f"customer_id = {CUSTOMER}",
    "ticket_comments": "NOT is_internal AND " + TICKET_OF_CUSTOMER.format(table="ticket_comments"),
    "projects": f"customer_id = {CUSTOMER}",
    "project_phases": PROJECT_OF_CUSTOMER,
    "time_entries": f"customer_id = {CUSTOMER}",
    "invoices": f"customer_id = {CUSTOMER} AND invoice_status <> 'draft'",
    "invoice_line_items": ("EXISTS (SELECT 1 FROM invoices i WHERE i.invoice_id = invoice_line_items.invoice_id"
                           f" AND i.customer_id = {CUSTOMER} AND i.invoice_status <> 'draft')"),
    "accounts": f"contact_id = {CONTACT}",  # one's own login only
}

# (table, command, USING, WITH CHECK): the only writes a contact's transaction can make.
WRITE_POLICIES = [
    ("contacts", "UPDATE", f"contact_id = {CONTACT}", f"contact_id = {CONTACT}"),
    ("accounts", "UPDATE", f"contact_id = {CONTACT}", f"contact_id = {CONTACT}"),
    ("support_tickets", "INSERT", None, f"customer_id = {CUSTOMER} AND contact_id = {CONTACT}"),
    ("support_tickets", "UPDATE", f"customer_id = {CUSTOMER}", f"customer_id = {CUSTOMER}"),
    ("ticket_comments", "INSERT", None,
     f"author_contact_id = {CONTACT} AND author_employee_id IS NULL AND NOT is_internal AND "
     + TICKET_OF_CUSTOMER.format(table="ticket_comments")),
    ("project_phases", "UPDATE", PROJECT_OF_CUSTOMER,
     f"{PROJECT_OF_CUSTOMER} AND (approved_by_contact_id IS NULL OR approved_by_contact_id = {CONTACT})"),
    ("audit_events", "INSERT", None, f"actor_type = 'contact' AND actor_id = {CONTACT}"),
]

# Privileges: what a contact's transaction may touch at all (RLS then narrows the rows).
GRANTS = [
    "GRANT SELECT ON customers, contacts, service_contracts, support_tickets, ticket_comments, projects,"
    " project_phases, time_entries, invoices, invoice_line_items, accounts TO portal_contact",
    "GRANT INSERT (ticket_number, customer_id, contract_id, contact_id, title, description, category, priority,"
    " status, created_at) ON support_tickets TO portal_contact",
    "GRANT UPDATE (status, resolved_at, customer_satisfaction) ON support_tickets TO portal_contact",
    "GRANT INSERT (ticket_id, author_contact_id, body, is_internal, created_at) ON ticket_comments TO portal_contact",
    "GRANT UPDATE (first_name, last_name, phone, mobile, communication_preference, last_login)"
    " ON contacts TO portal_contact",
    "GRANT UPDATE (phase_status, approved_at, approved_by_contact_id) ON project_phases TO portal_contact",
    "GRANT UPDATE (password_hash, password_changed_at, session_version, last_login_at, updated_at)"
    " ON accounts TO portal_contact",
    # Contacts see who works their tickets, never what staff earn or cost.
    "GRANT SELECT (employee_id, first_name, last_name) ON employees TO portal_contact",
    "GRANT INSERT ON audit_events TO portal_contact",
    "GRANT USAGE ON SEQUENCE ticket_number_seq, support_tickets_ticket_id_seq, ticket_comments_comment_id_seq,"
    " audit_events_event_id_seq TO portal_contact",
]
PROTECTED_TABLES = [*READ_POLICIES, "audit_events"]


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
    op.add_column("accounts", sa.Column("totp_last_step", sa.BigInteger(), nullable=True))
    op.create_table(
        "login_sessions",
        sa.Column("login_session_id", sa.BigInteger(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ip_address", postgresql.INET(), nullable=True),
        sa.Column("user_agent", sa.String(length=255), nullable=True),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.account_id"], name=op.f("login_sessions_account_id_fkey"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("login_session_id", name=op.f("login_sessions_pkey")),
        sa.UniqueConstraint("token_hash", name=op.f("login_sessions_token_hash_key")),
    )
    op.create_index("idx_login_sessions_account", "login_sessions", ["account_id"])

    # Roles belong to the whole cluster (test databases share them): create it only when missing.
    # Look first: an administrator may have made it for an app role that cannot create roles, and
    # CREATE ROLE would then fail on the privilege before it could find the role exists. Two
    # migrations racing to create it still meet duplicate_object, which means the same.
    op.execute(f"""
        DO $$ BEGIN
            IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{CONTACT_ROLE}') THEN
                CREATE ROLE {CONTACT_ROLE} NOLOGIN;
            END IF;
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
    op.execute("""
        CREATE FUNCTION portal_contact_id() RETURNS integer LANGUAGE sql STABLE AS
        $$ SELECT nullif(current_setting('portal.contact_id', true), '')::integer $$
    """)
    for table in PROTECTED_TABLES:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY staff_all ON {table} USING (current_user <> '{CONTACT_ROLE}')"
                   f" WITH CHECK (current_user <> '{CONTACT_ROLE}')")
    for table, condition in READ_POLICIES.items():
        op.execute(f"CREATE POLICY contact_read ON {table} FOR SELECT TO {CONTACT_ROLE} USING ({condition})")
    for table, command, using, check in WRITE_POLICIES:
        op.execute(f"CREATE POLICY contact_{command.lower()} ON {table} FOR {command} TO {CONTACT_ROLE}"
                   + (f" USING ({using})" if using else "") + f" WITH CHECK ({check})")
    for grant in GRANTS:
        op.execute(grant)


def downgrade():
    op.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {CONTACT_ROLE}")
    op.execute(f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {CONTACT_ROLE}")
    op.execute(f"REVOKE ALL (employee_id, first_name, last_name) ON employees FROM {CONTACT_ROLE}")
    for table in PROTECTED_TABLES:
        for name in ("staff_all", "contact_read", "contact_insert", "contact_update"):
            op.execute(f"DROP POLICY IF EXISTS {name} ON {table}")
        op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
    op.execute("DROP FUNCTION portal_contact_id()")
    op.execute("DROP FUNCTION portal_customer_id()")
    # The role is the cluster's: drop it only when no other database still grants it anything, and
    # leave it to the administrator who made it when this app's role may not drop roles.
    op.execute(f"""
        DO $$ BEGIN
            IF NOT EXISTS (SELECT 1 FROM pg_shdepend d JOIN pg_roles r ON r.oid = d.refobjid
                           WHERE r.rolname = '{CONTACT_ROLE}') THEN
                DROP ROLE IF EXISTS {CONTACT_ROLE};
            END IF;
        EXCEPTION WHEN insufficient_privilege THEN NULL;
        END $$;
    """)
    op.drop_table("login_sessions")
    for column in ("totp_last_step", "recovery_code_hashes", "totp_enabled_at", "totp_secret", "session_version",
                   "password_changed_at"):
        op.drop_column("accounts", column)
    op.drop_table("auth_tokens")
    op.drop_table("portal_settings")
    op.drop_table("login_attempts")
