"""The seed's data model, with the errata of shared/DESIGN.md, plus accounts, comments and audit.

Every enumerated column has a named PostgreSQL enum type (errata 1); timestamps are timestamptz
(errata 4); chk_ticket_timestamps has its parentheses (errata 3); update_ticket_hours recomputes
both tickets of a moved entry (errata 5); discounts subtract and tax comes from a rate (errata 6);
a time entry is billed at most once (errata 11).

Revision ID: 0001_seed_schema
Revises:
Create Date: 2026-11-25
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = "0001_seed_schema"
down_revision = None
branch_labels = None
depends_on = None

ENUM_VALUES = {
    'actor_type': ('employee', 'contact', 'api_client', 'system'),
    'company_size': ('small', 'medium', 'large'),
    'service_tier': ('breakfix', 'essential', 'professional', 'enterprise'),
    'account_status': ('prospect', 'active', 'inactive', 'suspended'),
    'employment_status': ('active', 'inactive', 'terminated'),
    'employee_role': ('technician', 'senior_technician', 'project_manager', 'account_manager', 'admin'),
    'communication_preference': ('email', 'phone', 'sms'),
    'project_status': ('planning', 'active', 'on_hold', 'completed', 'cancelled'),
    'contract_status': ('draft', 'active', 'expired', 'terminated'),
    'invoice_status': ('draft', 'sent', 'paid', 'overdue', 'cancelled'),
    'phase_status': ('planning', 'active', 'completed', 'cancelled'),
    'ticket_category': ('hardware', 'software', 'network', 'security', 'email', 'backup', 'other'),
    'ticket_priority': ('low', 'medium', 'high', 'critical'),
    'ticket_status': ('open', 'assigned', 'in_progress', 'waiting_customer', 'resolved', 'closed'),
    'work_category': ('support', 'project', 'consultation', 'training', 'travel'),
    'approval_status': ('pending', 'approved', 'rejected'),
    'line_item_type': ('hourly_work', 'monthly_fee', 'expense', 'discount'),
}
# Created explicitly below, so create_table must not try again.
ENUMS = {name: postgresql.ENUM(*values, name=name, create_type=False) for name, values in ENUM_VALUES.items()}

SEQUENCES = ["ticket_number_seq", "invoice_number_seq", "contract_number_seq", "project_number_seq"]

FUNCTIONS_AND_TRIGGERS = """
-- Keeps support_tickets.actual_hours = approved hours logged on the ticket.
-- Errata 5: when an entry moves from ticket A to B, or is deleted, both tickets are recomputed;
-- entries on a project (no ticket) are skipped.
CREATE FUNCTION update_ticket_hours() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.ticket_id IS NOT NULL THEN
        UPDATE support_tickets
           SET actual_hours = (SELECT COALESCE(SUM(hours_worked), 0)
                                 FROM time_entries
                                WHERE ticket_id = OLD.ticket_id AND approval_status = 'approved')
         WHERE ticket_id = OLD.ticket_id;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.ticket_id IS NOT NULL
       AND (TG_OP = 'INSERT' OR NEW.ticket_id IS DISTINCT FROM OLD.ticket_id) THEN
        UPDATE support_tickets
           SET actual_hours = (SELECT COALESCE(SUM(hours_worked), 0)
                                 FROM time_entries
                                WHERE ticket_id = NEW.ticket_id AND approval_status = 'approved')
         WHERE ticket_id = NEW.ticket_id;
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER trg_update_ticket_hours
    AFTER INSERT OR DELETE OR UPDATE OF ticket_id, hours_worked, approval_status ON time_entries
    FOR EACH ROW EXECUTE FUNCTION update_ticket_hours();

-- The seed's rule: a ticket leaving 'open' has been responded to.
CREATE FUNCTION set_first_response() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.status = 'open' AND NEW.status <> 'open' AND NEW.first_response_at IS NULL THEN
        NEW.first_response_at := CURRENT_TIMESTAMP;
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER trg_set_first_response
    BEFORE UPDATE ON support_tickets
    FOR EACH ROW EXECUTE FUNCTION set_first_response();

-- Keeps invoices.subtotal = the sum of its lines, discount lines subtracting (errata 6).
-- A line moved to another invoice recomputes both.
CREATE FUNCTION update_invoice_totals() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        UPDATE invoices
           SET subtotal = (SELECT COALESCE(SUM(CASE WHEN item_type = 'discount'
                                                    THEN -line_total ELSE line_total END), 0)
                             FROM invoice_line_items WHERE invoice_id = OLD.invoice_id)
         WHERE invoice_id = OLD.invoice_id;
    END IF;
    IF TG_OP = 'INSERT' OR (TG_OP = 'UPDATE' AND NEW.invoice_id IS DISTINCT FROM OLD.invoice_id) THEN
        UPDATE invoices
           SET subtotal = (SELECT COALESCE(SUM(CASE WHEN item_type = 'discount'
                                                    THEN -line_total ELSE line_total END), 0)
                             FROM invoice_line_items WHERE invoice_id = NEW.invoice_id)
         WHERE invoice_id = NEW.invoice_id;
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER trg_update_invoice_totals
    AFTER INSERT OR UPDATE OR DELETE ON invoice_line_items
    FOR EACH ROW EXECUTE FUNCTION update_invoice_totals();

-- Tax is a rate on the invoice (errata 6): tax_amount and total_amount always follow
-- subtotal and tax_rate, whoever writes the row.
CREATE FUNCTION compute_invoice_tax() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.tax_amount := round(NEW.subtotal * NEW.tax_rate, 2);
    NEW.total_amount := NEW.subtotal + NEW.tax_amount;
    RETURN NEW;
END;
$$;

CREATE TRIGGER trg_compute_invoice_tax
    BEFORE INSERT OR UPDATE ON invoices
    FOR EACH ROW EXECUTE FUNCTION compute_invoice_tax();

-- The audit log is append-only: nobody edits or deletes history.
CREATE FUNCTION prevent_audit_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit events are append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER trg_audit_events_append_only
    BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION prevent_audit_change();

CREATE TRIGGER trg_audit_events_no_truncate
    BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION prevent_audit_change();
"""

FUNCTION_NAMES = [
    "update_ticket_hours", "set_first_response", "update_invoice_totals",
    "compute_invoice_tax", "prevent_audit_change",
]

TABLES_IN_DROP_ORDER = [
    "invoice_line_items", "time_entries", "ticket_comments", "support_tickets", "project_phases",
    "invoices", "accounts", "service_contracts", "projects", "contacts", "employees", "customers",
    "audit_events",
]


def upgrade():
    bind = op.get_bind()
    for enum in ENUMS.values():
        enum.create(bind, checkfirst=False)
    for name in SEQUENCES:
        op.execute(sa.schema.CreateSequence(sa.Sequence(name)))

    op.create_table('audit_events',
    sa.Column('event_id', sa.BigInteger(), nullable=False),
    sa.Column('occurred_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('actor_type', ENUMS['actor_type'], nullable=False),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('actor_label', sa.String(length=255), nullable=True),
    sa.Column('action', sa.String(length=100), nullable=False),
    sa.Column('table_name', sa.String(length=63), nullable=True),
    sa.Column('row_id', sa.BigInteger(), nullable=True),
    sa.Column('changes', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('ip_address', postgresql.INET(), nullable=True),
    sa.PrimaryKeyConstraint('event_id', name=op.f('audit_events_pkey'))
    )
    op.create_index('idx_audit_occurred', 'audit_events', ['occurred_at'], unique=False)
    op.create_index('idx_audit_row', 'audit_events', ['table_name', 'row_id', 'occurred_at'], unique=False)

    op.create_table('customers',
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('company_name', sa.String(length=255), nullable=False),
    sa.Column('industry', sa.String(length=100), nullable=True),
    sa.Column('company_size', ENUMS['company_size'], server_default='small', nullable=False),
    sa.Column('tax_id', sa.String(length=20), nullable=True),
    sa.Column('primary_contact_email', sa.String(length=255), nullable=True),
    sa.Column('service_tier', ENUMS['service_tier'], server_default='breakfix', nullable=False),
    sa.Column('account_status', ENUMS['account_status'], server_default='prospect', nullable=False),
    sa.Column('account_health_score', sa.Numeric(precision=3, scale=2), server_default='0.75', nullable=False),
    sa.Column('billing_address', sa.Text(), nullable=True),
    sa.Column('service_address', sa.Text(), nullable=True),
    sa.Column('timezone', sa.String(length=50), server_default='America/Denver', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("primary_contact_email ~* '^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\\.[A-Za-z]{2,}$'", name=op.f('chk_email_format')),
    sa.CheckConstraint('account_health_score >= 0 AND account_health_score <= 1', name=op.f('chk_health_score')),
    sa.PrimaryKeyConstraint('customer_id', name=op.f('customers_pkey')),
    sa.UniqueConstraint('company_name', name=op.f('customers_company_name_key'))
    )
    op.create_index('idx_customers_company', 'customers', ['company_name'], unique=False)
    op.create_index('idx_customers_email', 'customers', ['primary_contact_email'], unique=False)
    op.create_index('idx_customers_tier_status', 'customers', ['service_tier', 'account_status'], unique=False)

    op.create_table('employees',
    sa.Column('employee_id', sa.Integer(), nullable=False),
    sa.Column('employee_number', sa.String(length=10), nullable=False),
    sa.Column('first_name', sa.String(length=100), nullable=False),
    sa.Column('last_name', sa.String(length=100), nullable=False),
    sa.Column('email', sa.String(length=255), nullable=False),
    sa.Column('phone', sa.String(length=20), nullable=True),
    sa.Column('employment_status', ENUMS['employment_status'], server_default='active', nullable=False),
    sa.Column('hire_date', sa.Date(), nullable=False),
    sa.Column('termination_date', sa.Date(), nullable=True),
    sa.Column('role', ENUMS['employee_role'], nullable=False),
    sa.Column('skills_certifications', sa.Text(), nullable=True),
    sa.Column('hourly_rate_internal', sa.Numeric(precision=10, scale=2), nullable=False),
    sa.Column('hourly_rate_client', sa.Numeric(precision=10, scale=2), nullable=False),
    sa.Column('capacity_hours_weekly', sa.Numeric(precision=4, scale=1), server_default='40.0', nullable=False),
    sa.Column('is_on_call', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint('capacity_hours_weekly > 0 AND capacity_hours_weekly <= 60', name=op.f('chk_capacity')),
    sa.CheckConstraint('hourly_rate_internal > 0 AND hourly_rate_client > 0', name=op.f('chk_rates')),
    sa.CheckConstraint('termination_date IS NULL OR termination_date >= hire_date', name=op.f('chk_termination_date')),
    sa.PrimaryKeyConstraint('employee_id', name=op.f('employees_pkey')),
    sa.UniqueConstraint('email', name=op.f('employees_email_key')),
    sa.UniqueConstraint('employee_number', name=op.f('employees_employee_number_key'))
    )
    op.create_table('contacts',
    sa.Column('contact_id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('first_name', sa.String(length=100), nullable=False),
    sa.Column('last_name', sa.String(length=100), nullable=False),
    sa.Column('email', sa.String(length=255), nullable=False),
    sa.Column('phone', sa.String(length=20), nullable=True),
    sa.Column('mobile', sa.String(length=20), nullable=True),
    sa.Column('title', sa.String(length=100), nullable=True),
    sa.Column('department', sa.String(length=100), nullable=True),
    sa.Column('is_primary_contact', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('is_billing_contact', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('can_create_tickets', sa.Boolean(), server_default=sa.text('true'), nullable=False),
    sa.Column('can_approve_projects', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('communication_preference', ENUMS['communication_preference'], server_default='email', nullable=False),
    sa.Column('last_login', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("email ~* '^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\\.[A-Za-z]{2,}$'", name=op.f('chk_email_format')),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.customer_id'], name=op.f('contacts_customer_id_fkey'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('contact_id', name=op.f('contacts_pkey')),
    sa.UniqueConstraint('email', name=op.f('contacts_email_key'))
    )
    op.create_index('idx_contacts_customer', 'contacts', ['customer_id'], unique=False)
    op.create_index('idx_contacts_email', 'contacts', ['email'], unique=False)
    op.create_index('idx_contacts_primary', 'contacts', ['customer_id', 'is_primary_contact'], unique=False, postgresql_where=sa.text('is_primary_contact = TRUE'))

    op.create_table('projects',
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('project_number', sa.String(length=15), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('project_manager_id', sa.Integer(), nullable=True),
    sa.Column('project_name', sa.String(length=255), nullable=False),
    sa.Column('scope_description', sa.Text(), nullable=True),
    sa.Column('budget_amount', sa.Numeric(precision=12, scale=2), nullable=False),
    sa.Column('actual_cost', sa.Numeric(precision=12, scale=2), server_default=sa.text('0'), nullable=False),
    sa.Column('start_date', sa.Date(), nullable=False),
    sa.Column('planned_end_date', sa.Date(), nullable=False),
    sa.Column('actual_end_date', sa.Date(), nullable=True),
    sa.Column('project_status', ENUMS['project_status'], server_default='planning', nullable=False),
    sa.Column('completion_percentage', sa.Integer(), server_default='0', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint('actual_cost >= 0', name=op.f('chk_actual_cost')),
    sa.CheckConstraint('actual_end_date IS NULL OR actual_end_date >= start_date', name=op.f('chk_actual_end_date')),
    sa.CheckConstraint('budget_amount > 0', name=op.f('chk_budget')),
    sa.CheckConstraint('completion_percentage >= 0 AND completion_percentage <= 100', name=op.f('chk_completion')),
    sa.CheckConstraint('planned_end_date >= start_date', name=op.f('chk_project_dates')),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.customer_id'], name=op.f('projects_customer_id_fkey')),
    sa.ForeignKeyConstraint(['project_manager_id'], ['employees.employee_id'], name=op.f('projects_project_manager_id_fkey')),
    sa.PrimaryKeyConstraint('project_id', name=op.f('projects_pkey')),
    sa.UniqueConstraint('project_number', name=op.f('projects_project_number_key'))
    )
    op.create_index('idx_projects_customer', 'projects', ['customer_id'], unique=False)
    op.create_index('idx_projects_dates', 'projects', ['start_date', 'planned_end_date'], unique=False)
    op.create_index('idx_projects_manager', 'projects', ['project_manager_id'], unique=False)
    op.create_index('idx_projects_status', 'projects', ['project_status'], unique=False)

    op.create_table('service_contracts',
    sa.Column('contract_id', sa.Integer(), nullable=False),
    sa.Column('contract_number', sa.String(length=20), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('service_tier', ENUMS['service_tier'], nullable=False),
    sa.Column('monthly_fee', sa.Numeric(precision=10, scale=2), server_default=sa.text('0'), nullable=False),
    sa.Column('included_hours', sa.Integer(), server_default='0', nullable=False),
    sa.Column('hourly_rate_additional', sa.Numeric(precision=10, scale=2), server_default='125.00', nullable=False),
    sa.Column('start_date', sa.Date(), nullable=False),
    sa.Column('end_date', sa.Date(), nullable=False),
    sa.Column('auto_renewal', sa.Boolean(), server_default=sa.text('true'), nullable=False),
    sa.Column('price_increase_annual', sa.Numeric(precision=5, scale=2), server_default='3.00', nullable=False),
    sa.Column('response_time_hours', sa.Integer(), server_default='24', nullable=False),
    sa.Column('resolution_time_hours', sa.Integer(), server_default='72', nullable=False),
    sa.Column('contract_status', ENUMS['contract_status'], server_default='draft', nullable=False),
    sa.Column('terms_conditions', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint('end_date > start_date', name=op.f('chk_contract_dates')),
    sa.CheckConstraint('hourly_rate_additional > 0', name=op.f('chk_hourly_rate')),
    sa.CheckConstraint('monthly_fee >= 0', name=op.f('chk_monthly_fee')),
    sa.CheckConstraint('price_increase_annual >= 0 AND price_increase_annual <= 50', name=op.f('chk_price_increase')),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.customer_id'], name=op.f('service_contracts_customer_id_fkey')),
    sa.PrimaryKeyConstraint('contract_id', name=op.f('service_contracts_pkey')),
    sa.UniqueConstraint('contract_number', name=op.f('service_contracts_contract_number_key'))
    )
    op.create_index('idx_contracts_customer', 'service_contracts', ['customer_id'], unique=False)
    op.create_index('idx_contracts_renewal', 'service_contracts', ['end_date', 'auto_renewal'], unique=False, postgresql_where=sa.text('auto_renewal = TRUE'))
    op.create_index('idx_contracts_status_dates', 'service_contracts', ['contract_status', 'start_date', 'end_date'], unique=False)

    op.create_table('accounts',
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('email', sa.String(length=255), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=True),
    sa.Column('contact_id', sa.Integer(), nullable=True),
    sa.Column('employee_id', sa.Integer(), nullable=True),
    sa.Column('is_active', sa.Boolean(), server_default=sa.text('true'), nullable=False),
    sa.Column('last_login_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('failed_login_count', sa.Integer(), server_default='0', nullable=False),
    sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("email = btrim(email) AND email <> ''", name=op.f('chk_account_email')),
    sa.CheckConstraint('failed_login_count >= 0', name=op.f('chk_failed_login_count')),
    sa.CheckConstraint('num_nonnulls(contact_id, employee_id) = 1', name=op.f('chk_account_owner')),
    sa.ForeignKeyConstraint(['contact_id'], ['contacts.contact_id'], name=op.f('accounts_contact_id_fkey'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['employee_id'], ['employees.employee_id'], name=op.f('accounts_employee_id_fkey'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('account_id', name=op.f('accounts_pkey')),
    sa.UniqueConstraint('contact_id', name=op.f('accounts_contact_id_key')),
    sa.UniqueConstraint('employee_id', name=op.f('accounts_employee_id_key'))
    )
    op.create_index('idx_accounts_email_lower', 'accounts', [sa.literal_column('lower(email)')], unique=True)

    op.create_table('invoices',
    sa.Column('invoice_id', sa.Integer(), nullable=False),
    sa.Column('invoice_number', sa.String(length=20), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('contract_id', sa.Integer(), nullable=True),
    sa.Column('invoice_date', sa.Date(), server_default=sa.text('CURRENT_DATE'), nullable=False),
    sa.Column('due_date', sa.Date(), nullable=False),
    sa.Column('subtotal', sa.Numeric(precision=12, scale=2), server_default=sa.text('0'), nullable=False),
    sa.Column('tax_rate', sa.Numeric(precision=6, scale=4), server_default=sa.text('0'), nullable=False),
    sa.Column('tax_amount', sa.Numeric(precision=12, scale=2), server_default=sa.text('0'), nullable=False),
    sa.Column('total_amount', sa.Numeric(precision=12, scale=2), server_default=sa.text('0'), nullable=False),
    sa.Column('invoice_status', ENUMS['invoice_status'], server_default='draft', nullable=False),
    sa.Column('payment_terms', sa.String(length=100), server_default='Net 30', nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('paid_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('paid_amount', sa.Numeric(precision=12, scale=2), server_default=sa.text('0'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint('due_date >= invoice_date', name=op.f('chk_invoice_dates')),
    sa.CheckConstraint('subtotal >= 0 AND tax_amount >= 0 AND total_amount = subtotal + tax_amount AND paid_amount >= 0', name=op.f('chk_invoice_amounts')),
    sa.CheckConstraint('tax_rate >= 0 AND tax_rate < 1', name=op.f('chk_tax_rate')),
    sa.ForeignKeyConstraint(['contract_id'], ['service_contracts.contract_id'], name=op.f('invoices_contract_id_fkey')),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.customer_id'], name=op.f('invoices_customer_id_fkey')),
    sa.PrimaryKeyConstraint('invoice_id', name=op.f('invoices_pkey')),
    sa.UniqueConstraint('invoice_number', name=op.f('invoices_invoice_number_key'))
    )
    op.create_index('idx_invoices_customer', 'invoices', ['customer_id'], unique=False)
    op.create_index('idx_invoices_dates', 'invoices', ['invoice_date', 'due_date'], unique=False)
    op.create_index('idx_invoices_overdue', 'invoices', ['due_date', 'invoice_status'], unique=False, postgresql_where=sa.text("invoice_status IN ('sent', 'overdue')"))
    op.create_index('idx_invoices_status', 'invoices', ['invoice_status'], unique=False)

    op.create_table('project_phases',
    sa.Column('phase_id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('phase_name', sa.String(length=255), nullable=False),
    sa.Column('deliverables', sa.Text(), nullable=True),
    sa.Column('budget_allocation', sa.Numeric(precision=12, scale=2), nullable=False),
    sa.Column('start_date', sa.Date(), nullable=False),
    sa.Column('end_date', sa.Date(), nullable=False),
    sa.Column('phase_status', ENUMS['phase_status'], server_default='planning', nullable=False),
    sa.Column('requires_approval', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('approved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('approved_by_contact_id', sa.Integer(), nullable=True),
    sa.CheckConstraint('budget_allocation >= 0', name=op.f('chk_phase_budget')),
    sa.CheckConstraint('end_date >= start_date', name=op.f('chk_phase_dates')),
    sa.ForeignKeyConstraint(['approved_by_contact_id'], ['contacts.contact_id'], name=op.f('project_phases_approved_by_contact_id_fkey')),
    sa.ForeignKeyConstraint(['project_id'], ['projects.project_id'], name=op.f('project_phases_project_id_fkey'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('phase_id', name=op.f('project_phases_pkey'))
    )
    op.create_table('support_tickets',
    sa.Column('ticket_id', sa.Integer(), nullable=False),
    sa.Column('ticket_number', sa.String(length=15), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('contract_id', sa.Integer(), nullable=True),
    sa.Column('contact_id', sa.Integer(), nullable=True),
    sa.Column('assigned_employee_id', sa.Integer(), nullable=True),
    sa.Column('title', sa.String(length=255), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('category', ENUMS['ticket_category'], nullable=False),
    sa.Column('priority', ENUMS['ticket_priority'], server_default='medium', nullable=False),
    sa.Column('status', ENUMS['ticket_status'], server_default='open', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('assigned_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('first_response_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('estimated_hours', sa.Numeric(precision=5, scale=2), nullable=True),
    sa.Column('actual_hours', sa.Numeric(precision=5, scale=2), server_default=sa.text('0'), nullable=False),
    sa.Column('resolution_notes', sa.Text(), nullable=True),
    sa.Column('customer_satisfaction', sa.Integer(), nullable=True),
    sa.CheckConstraint('(assigned_at IS NULL OR assigned_at >= created_at) AND (first_response_at IS NULL OR first_response_at >= created_at) AND (resolved_at IS NULL OR resolved_at >= created_at) AND (closed_at IS NULL OR closed_at >= created_at)', name=op.f('chk_ticket_timestamps')),
    sa.CheckConstraint('actual_hours >= 0', name=op.f('chk_actual_hours')),
    sa.CheckConstraint('customer_satisfaction >= 1 AND customer_satisfaction <= 5', name=op.f('support_tickets_customer_satisfaction_check')),
    sa.CheckConstraint('estimated_hours IS NULL OR estimated_hours > 0', name=op.f('chk_estimated_hours')),
    sa.ForeignKeyConstraint(['assigned_employee_id'], ['employees.employee_id'], name=op.f('support_tickets_assigned_employee_id_fkey')),
    sa.ForeignKeyConstraint(['contact_id'], ['contacts.contact_id'], name=op.f('support_tickets_contact_id_fkey')),
    sa.ForeignKeyConstraint(['contract_id'], ['service_contracts.contract_id'], name=op.f('support_tickets_contract_id_fkey')),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.customer_id'], name=op.f('support_tickets_customer_id_fkey')),
    sa.PrimaryKeyConstraint('ticket_id', name=op.f('support_tickets_pkey')),
    sa.UniqueConstraint('ticket_number', name=op.f('support_tickets_ticket_number_key'))
    )
    op.create_index('idx_tickets_assigned', 'support_tickets', ['assigned_employee_id', 'status'], unique=False)
    op.create_index('idx_tickets_contract', 'support_tickets', ['contract_id'], unique=False)
    op.create_index('idx_tickets_created', 'support_tickets', ['created_at'], unique=False)
    op.create_index('idx_tickets_customer', 'support_tickets', ['customer_id'], unique=False)
    op.create_index('idx_tickets_status_priority', 'support_tickets', ['status', 'priority'], unique=False)

    op.create_table('ticket_comments',
    sa.Column('comment_id', sa.Integer(), nullable=False),
    sa.Column('ticket_id', sa.Integer(), nullable=False),
    sa.Column('author_contact_id', sa.Integer(), nullable=True),
    sa.Column('author_employee_id', sa.Integer(), nullable=True),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('is_internal', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint('NOT is_internal OR author_employee_id IS NOT NULL', name=op.f('chk_comment_internal_staff')),
    sa.CheckConstraint("body ~ '[^[:space:]]'", name=op.f('chk_comment_body')),
    sa.CheckConstraint('num_nonnulls(author_contact_id, author_employee_id) = 1', name=op.f('chk_comment_author')),
    sa.ForeignKeyConstraint(['author_contact_id'], ['contacts.contact_id'], name=op.f('ticket_comments_author_contact_id_fkey')),
    sa.ForeignKeyConstraint(['author_employee_id'], ['employees.employee_id'], name=op.f('ticket_comments_author_employee_id_fkey')),
    sa.ForeignKeyConstraint(['ticket_id'], ['support_tickets.ticket_id'], name=op.f('ticket_comments_ticket_id_fkey'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('comment_id', name=op.f('ticket_comments_pkey'))
    )
    op.create_index('idx_comments_ticket', 'ticket_comments', ['ticket_id', 'created_at'], unique=False)

    op.create_table('time_entries',
    sa.Column('entry_id', sa.Integer(), nullable=False),
    sa.Column('employee_id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('ticket_id', sa.Integer(), nullable=True),
    sa.Column('project_id', sa.Integer(), nullable=True),
    sa.Column('work_date', sa.Date(), nullable=False),
    sa.Column('start_time', sa.Time(), nullable=True),
    sa.Column('end_time', sa.Time(), nullable=True),
    sa.Column('hours_worked', sa.Numeric(precision=4, scale=2), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('work_category', ENUMS['work_category'], nullable=False),
    sa.Column('is_billable', sa.Boolean(), server_default=sa.text('true'), nullable=False),
    sa.Column('approval_status', ENUMS['approval_status'], server_default='pending', nullable=False),
    sa.Column('approved_by_employee_id', sa.Integer(), nullable=True),
    sa.Column('approved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('billing_rate', sa.Numeric(precision=10, scale=2), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint('(ticket_id IS NOT NULL AND project_id IS NULL) OR (ticket_id IS NULL AND project_id IS NOT NULL)', name=op.f('chk_work_assignment')),
    sa.CheckConstraint('billing_rate >= 0', name=op.f('chk_billing_rate')),
    sa.CheckConstraint('end_time IS NULL OR start_time IS NULL OR end_time > start_time', name=op.f('chk_time_range')),
    sa.CheckConstraint('hours_worked > 0 AND hours_worked <= 24', name=op.f('chk_hours_worked')),
    sa.ForeignKeyConstraint(['approved_by_employee_id'], ['employees.employee_id'], name=op.f('time_entries_approved_by_employee_id_fkey')),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.customer_id'], name=op.f('time_entries_customer_id_fkey')),
    sa.ForeignKeyConstraint(['employee_id'], ['employees.employee_id'], name=op.f('time_entries_employee_id_fkey')),
    sa.ForeignKeyConstraint(['project_id'], ['projects.project_id'], name=op.f('time_entries_project_id_fkey')),
    sa.ForeignKeyConstraint(['ticket_id'], ['support_tickets.ticket_id'], name=op.f('time_entries_ticket_id_fkey')),
    sa.PrimaryKeyConstraint('entry_id', name=op.f('time_entries_pkey'))
    )
    op.create_index('idx_time_approval', 'time_entries', ['approval_status'], unique=False)
    op.create_index('idx_time_billable', 'time_entries', ['is_billable', 'approval_status'], unique=False, postgresql_where=sa.text('is_billable = TRUE'))
    op.create_index('idx_time_customer', 'time_entries', ['customer_id'], unique=False)
    op.create_index('idx_time_employee_date', 'time_entries', ['employee_id', 'work_date'], unique=False)
    op.create_index('idx_time_project', 'time_entries', ['project_id'], unique=False, postgresql_where=sa.text('project_id IS NOT NULL'))
    op.create_index('idx_time_ticket', 'time_entries', ['ticket_id'], unique=False, postgresql_where=sa.text('ticket_id IS NOT NULL'))

    op.create_table('invoice_line_items',
    sa.Column('line_item_id', sa.Integer(), nullable=False),
    sa.Column('invoice_id', sa.Integer(), nullable=False),
    sa.Column('time_entry_id', sa.Integer(), nullable=True),
    sa.Column('description', sa.String(length=500), nullable=False),
    sa.Column('quantity', sa.Numeric(precision=8, scale=2), server_default=sa.text('1'), nullable=False),
    sa.Column('unit_price', sa.Numeric(precision=10, scale=2), nullable=False),
    sa.Column('line_total', sa.Numeric(precision=12, scale=2), nullable=False),
    sa.Column('item_type', ENUMS['line_item_type'], nullable=False),
    sa.CheckConstraint('quantity > 0 AND unit_price >= 0 AND line_total = quantity * unit_price', name=op.f('chk_line_amounts')),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoices.invoice_id'], name=op.f('invoice_line_items_invoice_id_fkey'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['time_entry_id'], ['time_entries.entry_id'], name=op.f('invoice_line_items_time_entry_id_fkey')),
    sa.PrimaryKeyConstraint('line_item_id', name=op.f('invoice_line_items_pkey'))
    )
    op.create_index('idx_line_items_invoice', 'invoice_line_items', ['invoice_id'], unique=False)
    op.create_index('idx_line_items_time_entry', 'invoice_line_items', ['time_entry_id'], unique=True, postgresql_where=sa.text('time_entry_id IS NOT NULL'))

    op.execute(FUNCTIONS_AND_TRIGGERS)


def downgrade():
    # Dropping a table drops its triggers; the functions and types go explicitly.
    for table in TABLES_IN_DROP_ORDER:
        op.drop_table(table)
    for name in FUNCTION_NAMES:
        op.execute(f"DROP FUNCTION IF EXISTS {name}()")
    for name in SEQUENCES:
        op.execute(sa.schema.DropSequence(sa.Sequence(name)))
    bind = op.get_bind()
    for enum in ENUMS.values():
        enum.drop(bind, checkfirst=False)
