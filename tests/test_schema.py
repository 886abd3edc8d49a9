"""The database the migrations build holds the seed's whole schema, under the seed's names, with the errata."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

# The seed's tables and columns (section 2), plus the errata columns (tax_rate) ...
SEED_COLUMNS = {
    "customers": "customer_id company_name industry company_size tax_id primary_contact_email service_tier "
                 "account_status account_health_score billing_address service_address timezone created_at updated_at",
    "contacts": "contact_id customer_id first_name last_name email phone mobile title department is_primary_contact "
                "is_billing_contact can_create_tickets can_approve_projects communication_preference last_login created_at",
    "service_contracts": "contract_id contract_number customer_id service_tier monthly_fee included_hours "
                         "hourly_rate_additional start_date end_date auto_renewal price_increase_annual "
                         "response_time_hours resolution_time_hours contract_status terms_conditions created_at updated_at",
    "employees": "employee_id employee_number first_name last_name email phone employment_status hire_date "
                 "termination_date role skills_certifications hourly_rate_internal hourly_rate_client "
                 "capacity_hours_weekly is_on_call created_at updated_at",
    "support_tickets": "ticket_id ticket_number customer_id contract_id contact_id assigned_employee_id title "
                       "description category priority status created_at assigned_at first_response_at resolved_at "
                       "closed_at estimated_hours actual_hours resolution_notes customer_satisfaction",
    "projects": "project_id project_number customer_id project_manager_id project_name scope_description "
                "budget_amount actual_cost start_date planned_end_date actual_end_date project_status "
                "completion_percentage created_at updated_at",
    "project_phases": "phase_id project_id phase_name deliverables budget_allocation start_date end_date "
                      "phase_status requires_approval approved_at approved_by_contact_id",
    "time_entries": "entry_id employee_id customer_id ticket_id project_id work_date start_time end_time "
                    "hours_worked description work_category is_billable approval_status approved_by_employee_id "
                    "approved_at billing_rate created_at",
    "invoices": "invoice_id invoice_number customer_id contract_id invoice_date due_date subtotal tax_rate tax_amount "
                "total_amount invoice_status payment_terms sent_at paid_at paid_amount created_at",
    "invoice_line_items": "line_item_id invoice_id time_entry_id description quantity unit_price line_total item_type",
}
ADDED_TABLES = {"accounts", "ticket_comments", "audit_events"}

# (table, column) -> (data type, numeric precision, scale, character length, default) of the seed
SEED_TYPES = {
    ("customers", "company_name"): ("character varying", None, None, 255, None),
    ("customers", "account_health_score"): ("numeric", 3, 2, None, "0.75"),
    ("customers", "timezone"): ("character varying", None, None, 50, "'America/Denver'::character varying"),
    ("customers", "created_at"): ("timestamp with time zone", None, None, None, "now()"),
    ("service_contracts", "monthly_fee"): ("numeric", 10, 2, None, "0"),
    ("service_contracts", "hourly_rate_additional"): ("numeric", 10, 2, None, "125.00"),
    ("service_contracts", "price_increase_annual"): ("numeric", 5, 2, None, "3.00"),
    ("service_contracts", "auto_renewal"): ("boolean", None, None, None, "true"),
    ("service_contracts", "response_time_hours"): ("integer", 32, 0, None, "24"),
    ("service_contracts", "resolution_time_hours"): ("integer", 32, 0, None, "72"),
    ("employees", "employee_number"): ("character varying", None, None, 10, None),
    ("employees", "capacity_hours_weekly"): ("numeric", 4, 1, None, "40.0"),
    # 20, not the seed's 15: the millionth ticket's number, TKT-2026-1000000, needs 16 (migration 0006).
    ("support_tickets", "ticket_number"): ("character varying", None, None, 20, None),
    ("support_tickets", "estimated_hours"): ("numeric", 5, 2, None, None),
    ("support_tickets", "actual_hours"): ("numeric", 5, 2, None, "0"),
    ("support_tickets", "resolved_at"): ("timestamp with time zone", None, None, None, None),
    ("projects", "budget_amount"): ("numeric", 12, 2, None, None),
    ("time_entries", "hours_worked"): ("numeric", 4, 2, None, None),
    ("time_entries", "start_time"): ("time without time zone", None, None, None, None),
    ("invoices", "payment_terms"): ("character varying", None, None, 100, "'Net 30'::character varying"),
    ("invoices", "invoice_date"): ("date", None, None, None, "CURRENT_DATE"),
    ("invoice_line_items", "description"): ("character varying", None, None, 500, None),
    ("invoice_line_items", "quantity"): ("numeric", 8, 2, None, "1"),
}

# Errata 1: a named enum type for every enumerated column, with the seed's values in order.
SEED_ENUMS = {
    "service_tier": ["breakfix", "essential", "professional", "enterprise"],
    "ticket_status": ["open", "assigned", "in_progress", "waiting_customer", "resolved", "closed"],
    "ticket_priority": ["low", "medium", "high", "critical"],
    "project_status": ["planning", "active", "on_hold", "completed", "cancelled"],
    "employment_status": ["active", "inactive", "terminated"],
    "invoice_status": ["draft", "sent", "paid", "overdue", "cancelled"],
    "approval_status": ["pending", "approved", "rejected"],
    "company_size": ["small", "medium", "large"],
    "account_status": ["prospect", "active", "inactive", "suspended"],
    "communication_preference": ["email", "phone", "sms"],
    "contract_status": ["draft", "active", "expired", "terminated"],
    "ticket_category": ["hardware", "software", "network", "security", "email", "backup", "other"],
    "phase_status": ["planning", "active", "completed", "cancelled"],
    "employee_role": ["technician", "senior_technician", "project_manager", "account_manager", "admin"],
    "work_category": ["support", "project", "consultation", "training", "travel"],
    "line_item_type": ["hourly_work", "monthly_fee", "expense", "discount"],
}
ENUM_COLUMNS = {
    ("customers", "company_size"): "company_size", ("customers", "service_tier"): "service_tier",
    ("customers", "account_status"): "account_status",
    ("contacts", "communication_preference"): "communication_preference",
    ("service_contracts", "service_tier"): "service_tier",
    ("service_contracts", "contract_status"): "contract_status",
    ("employees", "employment_status"): "employment_status", ("employees", "role"): "employee_role",
    ("support_tickets", "category"): "ticket_category", ("support_tickets", "priority"): "ticket_priority",
    ("support_tickets", "status"): "ticket_status", ("projects", "project_status"): "project_status",
    ("project_phases", "phase_status"): "phase_status", ("time_entries", "work_category"): "work_category",
    ("time_entries", "approval_status"): "approval_status", ("invoices", "invoice_status"): "invoice_status",
    ("invoice_line_items", "item_type"): "line_item_type",
}

# The seed's indexes: name -> (table, columns, partial predicate or None, unique)
SEED_INDEXES = {
    "idx_customers_company": ("customers", "company_name", None, False),
    "idx_customers_tier_status": ("customers", "service_tier, account_status", None, False),
    "idx_customers_email": ("customers", "primary_contact_email", None, False),
    "idx_contacts_customer": ("contacts", "customer_id", None, False),
    "idx_contacts_email": ("contacts", "email", None, False),
    "idx_contacts_primary": ("contacts", "customer_id, is_primary_contact", "(is_primary_contact = true)", False),
    "idx_contracts_customer": ("service_contracts", "customer_id", None, False),
    "idx_contracts_status_dates": ("service_contracts", "contract_status, start_date, end_date", None, False),
    "idx_contracts_renewal": ("service_contracts", "end_date, auto_renewal", "(auto_renewal = true)", False),
    "idx_tickets_customer": ("support_tickets", "customer_id", None, False),
    "idx_tickets_assigned": ("support_tickets", "assigned_employee_id, status", None, False),
    "idx_tickets_status_priority": ("support_tickets", "status, priority", None, False),
    "idx_tickets_contract": ("support_tickets", "contract_id", None, False),
    "idx_tickets_created": ("support_tickets", "created_at", None, False),
    "idx_projects_customer": ("projects", "customer_id", None, False),
    "idx_projects_manager": ("projects", "project_manager_id", None, False),
    "idx_projects_status": ("projects", "project_status", None, False),
    "idx_projects_dates": ("projects", "start_date, planned_end_date", None, False),
    "idx_time_employee_date": ("time_entries", "employee_id, work_date", None, False),
    "idx_time_customer": ("time_entries", "customer_id", None, False),
    "idx_time_ticket": ("time_entries", "ticket_id", "(ticket_id IS NOT NULL)", False),
    "idx_time_project": ("time_entries", "project_id", "(project_id IS NOT NULL)", False),
    "idx_time_approval": ("time_entries", "approval_status", None, False),
    "idx_time_billable": ("time_entries", "is_billable, approval_status", "(is_billable = true)", False),
    "idx_invoices_customer": ("invoices", "customer_id", None, False),
    "idx_invoices_status": ("invoices", "invoice_status", None, False),
    "idx_invoices_dates": ("invoices", "invoice_date, due_date", None, False),
    "idx_invoices_overdue": ("invoices", "due_date, invoice_status",
                             "(invoice_status = ANY (ARRAY['sent'::invoice_status, 'overdue'::invoice_status]))",
                             False),
    "idx_line_items_invoice": ("invoice_line_items", "invoice_id", None, False),
    # Errata 11: unique, so a time entry is billed at most once; over live lines (issue 11: cancelling frees it).
    "idx_line_items_time_entry": ("invoice_line_items", "time_entry_id", "((time_entry_id IS NOT NULL) AND live)",
                                  True),
}

# Foreign keys: (table, column) -> (referenced table, ON DELETE)
SEED_FOREIGN_KEYS = {
    ("contacts", "customer_id"): ("customers", "CASCADE"),
    ("service_contracts", "customer_id"): ("customers", "NO ACTION"),
    ("support_tickets", "customer_id"): ("customers", "NO ACTION"),
    ("support_tickets", "contract_id"): ("service_contracts", "NO ACTION"),
    ("support_tickets", "contact_id"): ("contacts", "NO ACTION"),
    ("support_tickets", "assigned_employee_id"): ("employees", "NO ACTION"),
    ("projects", "customer_id"): ("customers", "NO ACTION"),
    ("projects", "project_manager_id"): ("employees", "NO ACTION"),
    ("project_phases", "project_id"): ("projects", "CASCADE"),
    ("project_phases", "approved_by_contact_id"): ("contacts", "NO ACTION"),
    ("time_entries", "employee_id"): ("employees", "NO ACTION"),
    ("time_entries", "customer_id"): ("customers", "NO ACTION"),
    ("time_entries", "ticket_id"): ("support_tickets", "NO ACTION"),
    ("time_entries", "project_id"): ("projects", "NO ACTION"),
    ("time_entries", "approved_by_employee_id"): ("employees", "NO ACTION"),
    ("invoices", "customer_id"): ("customers", "NO ACTION"),
    ("invoices", "contract_id"): ("service_contracts", "NO ACTION"),
    ("invoice_line_items", "invoice_id"): ("invoices", "CASCADE"),
    ("invoice_line_items", "time_entry_id"): ("time_entries", "NO ACTION"),
}

SEED_UNIQUE = {
    ("customers", "company_name"), ("contacts", "email"), ("service_contracts", "contract_number"),
    ("employees", "employee_number"), ("employees", "email"), ("support_tickets", "ticket_number"),
    ("projects", "project_number"), ("invoices", "invoice_number"),
}

SEED_TRIGGERS = {
    ("time_entries", "trg_update_ticket_hours", "update_ticket_hours"),
    ("support_tickets", "trg_set_first_response", "set_first_response"),
    ("invoice_line_items", "trg_update_invoice_totals", "update_invoice_totals"),
}

SEQUENCES = {"ticket_number_seq", "invoice_number_seq", "contract_number_seq", "project_number_seq"}


def _rows(session, sql, **params):
    return session.execute(sa.text(sql), params).all()


def test_every_seed_table_and_column_exists(session):
    columns = _rows(session, """SELECT table_name, column_name FROM information_schema.columns
                                WHERE table_schema = current_schema()""")
    by_table: dict[str, set[str]] = {}
    for table, column in columns:
        by_table.setdefault(table, set()).add(column)
    for table, names in SEED_COLUMNS.items():
        assert set(names.split()) <= by_table.get(table, set()), table
    assert ADDED_TABLES <= set(by_table)


@pytest.mark.parametrize("table, column", sorted(SEED_TYPES))
def test_seed_column_types_and_defaults(session, table, column):
    row = _rows(session, """
        SELECT data_type, numeric_precision, numeric_scale, character_maximum_length, column_default
        FROM information_schema.columns WHERE table_schema = current_schema()
        AND table_name = :t AND column_name = :c""", t=table, c=column)[0]
    assert tuple(row) == SEED_TYPES[(table, column)]


def test_every_timestamp_is_timestamptz(session):
    naive = _rows(session, """SELECT table_name, column_name FROM information_schema.columns
                              WHERE table_schema = current_schema()
                              AND data_type = 'timestamp without time zone'""")
    assert naive == []


def test_enum_types_hold_the_seed_values_and_type_their_columns(session):
    enums = _rows(session, """
        SELECT t.typname, array_agg(e.enumlabel ORDER BY e.enumsortorder)
        FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid
        JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE n.nspname = current_schema() GROUP BY t.typname""")
    found = dict(enums)
    for name, values in SEED_ENUMS.items():
        assert found.get(name) == values, name
    columns = dict(((t, c), u) for t, c, u in _rows(session, """
        SELECT table_name, column_name, udt_name FROM information_schema.columns
        WHERE table_schema = current_schema() AND data_type = 'USER-DEFINED'"""))
    for key, type_name in ENUM_COLUMNS.items():
        assert columns.get(key) == type_name, key
    # Errata 2: auto_renewal is a boolean.
    assert _rows(session, """SELECT data_type FROM information_schema.columns
                             WHERE table_name = 'service_contracts' AND column_name = 'auto_renewal'""")[0][0] == "boolean"


def test_seed_indexes_exist_under_their_names(session):
    indexes = {
        name: (table, columns, predicate, unique)
        for name, table, columns, predicate, unique in _rows(session, """
            SELECT i.relname, t.relname,
                   (SELECT string_agg(a.attname, ', ' ORDER BY k.ord)
                      FROM unnest(ix.indkey) WITH ORDINALITY k(attnum, ord)
                      JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum),
                   pg_get_expr(ix.indpred, ix.indrelid), ix.indisunique
            FROM pg_index ix JOIN pg_class i ON i.oid = ix.indexrelid
            JOIN pg_class t ON t.oid = ix.indrelid
            JOIN pg_namespace n ON n.oid = t.relnamespace WHERE n.nspname = current_schema()""")
    }
    for name, expected in SEED_INDEXES.items():
        assert indexes.get(name) == expected, name


def test_foreign_keys_with_the_seeds_on_delete(session):
    rows = _rows(session, """
        SELECT rel.relname, a.attname, ref.relname,
               CASE con.confdeltype WHEN 'c' THEN 'CASCADE' WHEN 'a' THEN 'NO ACTION'
                    WHEN 'r' THEN 'RESTRICT' WHEN 'n' THEN 'SET NULL' ELSE 'SET DEFAULT' END
        FROM pg_constraint con JOIN pg_class rel ON rel.oid = con.conrelid
        JOIN pg_class ref ON ref.oid = con.confrelid
        JOIN pg_attribute a ON a.attrelid = rel.oid AND a.attnum = con.conkey[1]
        JOIN pg_namespace n ON n.oid = rel.relnamespace
        WHERE con.contype = 'f' AND n.nspname = current_schema()""")
    found = {(t, c): (r, d) for t, c, r, d in rows}
    for key, expected in SEED_FOREIGN_KEYS.items():
        assert found.get(key) == expected, key


def test_unique_keys(session):
    rows = _rows(session, """
        SELECT rel.relname, a.attname FROM pg_constraint con
        JOIN pg_class rel ON rel.oid = con.conrelid
        JOIN pg_attribute a ON a.attrelid = rel.oid AND a.attnum = con.conkey[1]
        JOIN pg_namespace n ON n.oid = rel.relnamespace
        WHERE con.contype = 'u' AND n.nspname = current_schema() AND array_length(con.conkey, 1) = 1""")
    assert SEED_UNIQUE <= set(rows)


def test_seed_triggers_and_number_sequences(session):
    triggers = set(_rows(session, """
        SELECT c.relname, t.tgname, p.proname FROM pg_trigger t
        JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_proc p ON p.oid = t.tgfoid
        WHERE NOT t.tgisinternal"""))
    assert SEED_TRIGGERS <= triggers
    languages = dict(_rows(session, """
        SELECT p.proname, l.lanname FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
        JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = current_schema()"""))
    for _, _, function in SEED_TRIGGERS:
        assert languages[function] == "plpgsql"
    sequences = {name for (name,) in _rows(session, """
        SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind = 'S' AND n.nspname = current_schema()""")}
    assert SEQUENCES <= sequences


def test_accounts_email_is_unique_whatever_its_case(session):
    assert _rows(session, """SELECT indexdef FROM pg_indexes WHERE indexname = 'idx_accounts_email_lower'""")[0][0] \
        .endswith("USING btree (lower((email)::text))")
