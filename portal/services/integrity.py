"""Database errors a user can cause, turned into sentences that name the field.

Every CHECK, unique key and foreign key a form or API call can trip has an entry here, so the
database stays the last line of defence and the user still reads a clear message, never a 500.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import sqlalchemy as sa
from psycopg import errors as pg_errors

from portal.services.errors import Conflict, DomainError, Invalid


@dataclass(frozen=True)
class ConstraintMessage:
    field: str | None
    message: str
    conflict: bool = False


# (table, constraint) -> what to tell the user. A constraint name alone is not unique
# (chk_email_format stands on customers and contacts), so the table is part of the key.
CONSTRAINT_MESSAGES: dict[tuple[str, str], ConstraintMessage] = {
    # customers
    ("customers", "customers_company_name_key"): ConstraintMessage(
        "company_name", "A customer with this company name already exists.", conflict=True),
    ("customers", "chk_health_score"): ConstraintMessage(
        "account_health_score", "Account health score must be between 0 and 1."),
    ("customers", "chk_email_format"): ConstraintMessage(
        "primary_contact_email", "Enter a valid email address, like name@example.com."),
    ("customers", "customers_account_manager_id_fkey"): ConstraintMessage(
        "account_manager_id", "Choose an active account manager or administrator."),
    # contacts
    ("contacts", "contacts_email_key"): ConstraintMessage(
        "email", "Another contact already uses this email address.", conflict=True),
    ("contacts", "chk_email_format"): ConstraintMessage(
        "email", "Enter a valid email address, like name@example.com."),
    ("contacts", "contacts_customer_id_fkey"): ConstraintMessage(
        "customer_id", "That customer does not exist."),
    # service_contracts
    ("service_contracts", "service_contracts_contract_number_key"): ConstraintMessage(
        "contract_number", "A contract with this number already exists.", conflict=True),
    ("service_contracts", "chk_contract_dates"): ConstraintMessage(
        "end_date", "The end date must be after the start date."),
    ("service_contracts", "chk_monthly_fee"): ConstraintMessage(
        "monthly_fee", "The monthly fee cannot be negative."),
    ("service_contracts", "chk_hourly_rate"): ConstraintMessage(
        "hourly_rate_additional", "The additional hourly rate must be more than 0."),
    ("service_contracts", "chk_price_increase"): ConstraintMessage(
        "price_increase_annual", "The annual price increase must be between 0 and 50 percent."),
    ("service_contracts", "service_contracts_customer_id_fkey"): ConstraintMessage(
        "customer_id", "That customer does not exist."),
    # contract_expiry_notices (written by the worker's scan)
    ("contract_expiry_notices", "chk_expiry_stage"): ConstraintMessage(
        None, "A renewal notice goes out 30, 60 or 90 days before a contract ends."),
    # employees
    ("employees", "employees_employee_number_key"): ConstraintMessage(
        "employee_number", "Another employee already has this employee number.", conflict=True),
    ("employees", "employees_email_key"): ConstraintMessage(
        "email", "Another employee already uses this email address.", conflict=True),
    ("employees", "chk_rates"): ConstraintMessage(
        "hourly_rate_client", "Internal and client hourly rates must both be more than 0."),
    ("employees", "chk_capacity"): ConstraintMessage(
        "capacity_hours_weekly", "Weekly capacity must be more than 0 and at most 60 hours."),
    ("employees", "chk_termination_date"): ConstraintMessage(
        "termination_date", "The termination date cannot be before the hire date."),
    ("employees", "chk_email_format"): ConstraintMessage(
        "email", "Enter a valid email address, like name@techserv.com."),
    ("employees", "idx_employees_email_lower"): ConstraintMessage(
        "email", "Another employee already uses this email address.", conflict=True),
    # support_tickets
    ("support_tickets", "support_tickets_ticket_number_key"): ConstraintMessage(
        "ticket_number", "A ticket with this number already exists.", conflict=True),
    ("support_tickets", "chk_ticket_timestamps"): ConstraintMessage(
        None, "A ticket cannot be assigned, answered, resolved or closed before it was created."),
    ("support_tickets", "chk_estimated_hours"): ConstraintMessage(
        "estimated_hours", "Estimated hours must be more than 0."),
    ("support_tickets", "chk_actual_hours"): ConstraintMessage(
        "actual_hours", "Actual hours cannot be negative."),
    ("support_tickets", "support_tickets_customer_satisfaction_check"): ConstraintMessage(
        "customer_satisfaction", "Choose a rating from 1 to 5."),
    ("support_tickets", "support_tickets_customer_id_fkey"): ConstraintMessage(
        "customer_id", "That customer does not exist."),
    ("support_tickets", "support_tickets_contract_id_fkey"): ConstraintMessage(
        "contract_id", "That contract does not exist."),
    ("support_tickets", "support_tickets_contact_id_fkey"): ConstraintMessage(
        "contact_id", "That contact does not exist."),
    ("support_tickets", "support_tickets_assigned_employee_id_fkey"): ConstraintMessage(
        "assigned_employee_id", "That employee does not exist."),
    # ticket_comments
    ("ticket_comments", "chk_comment_body"): ConstraintMessage("body", "Write a message first."),
    ("ticket_comments", "chk_comment_author"): ConstraintMessage(
        None, "A message is written by one contact or one employee."),
    ("ticket_comments", "chk_comment_internal_staff"): ConstraintMessage(
        "is_internal", "Only staff can write internal notes."),
    # ticket_attachments
    ("ticket_attachments", "chk_attachment_size"): ConstraintMessage(
        "attachments", "Each file must be more than 0 bytes and at most 10 MB."),
    ("ticket_attachments", "chk_attachment_file_name"): ConstraintMessage("attachments", "The file needs a name."),
    ("ticket_attachments", "chk_attachment_uploader"): ConstraintMessage(
        None, "A file is attached by one contact or one employee."),
    ("ticket_attachments", "ticket_attachments_storage_name_key"): ConstraintMessage(
        "attachments", "Storing the file failed; attach it again.", conflict=True),
    ("ticket_attachments", "ticket_attachments_ticket_id_fkey"): ConstraintMessage(
        "ticket_id", "That ticket does not exist."),
    ("ticket_attachments", "ticket_attachments_comment_id_fkey"): ConstraintMessage(
        "comment_id", "That reply does not exist."),
    ("ticket_attachments", "ticket_attachments_uploaded_by_contact_id_fkey"): ConstraintMessage(
        None, "That contact does not exist."),
    ("ticket_attachments", "ticket_attachments_uploaded_by_employee_id_fkey"): ConstraintMessage(
        None, "That employee does not exist."),
    # projects and phases
    ("projects", "projects_project_number_key"): ConstraintMessage(
        "project_number", "A project with this number already exists.", conflict=True),
    ("projects", "chk_project_dates"): ConstraintMessage(
        "planned_end_date", "The planned end date cannot be before the start date."),
    ("projects", "chk_actual_end_date"): ConstraintMessage(
        "actual_end_date", "The actual end date cannot be before the start date."),
    ("projects", "chk_budget"): ConstraintMessage("budget_amount", "The budget must be more than 0."),
    ("projects", "chk_actual_cost"): ConstraintMessage("actual_cost", "The actual cost cannot be negative."),
    ("projects", "chk_completion"): ConstraintMessage(
        "completion_percentage", "Completion must be between 0 and 100 percent."),
    ("projects", "projects_customer_id_fkey"): ConstraintMessage("customer_id", "That customer does not exist."),
    ("projects", "projects_project_manager_id_fkey"): ConstraintMessage(
        "project_manager_id", "That employee does not exist."),
    ("project_phases", "chk_phase_dates"): ConstraintMessage(
        "end_date", "The phase cannot end before it starts."),
    ("project_phases", "chk_phase_budget"): ConstraintMessage(
        "budget_allocation", "The phase budget cannot be negative."),
    ("project_phases", "project_phases_project_id_fkey"): ConstraintMessage(
        "project_id", "That project does not exist."),
    # time_entries
    ("time_entries", "chk_work_assignment"): ConstraintMessage(
        "ticket_id", "Log time against one ticket or one project, not both and not neither."),
    ("time_entries", "chk_hours_worked"): ConstraintMessage(
        "hours_worked", "Hours worked must be more than 0 and at most 24."),
    ("time_entries", "chk_billing_rate"): ConstraintMessage(
        "billing_rate", "The billing rate cannot be negative."),
    ("time_entries", "chk_time_range"): ConstraintMessage(
        "end_time", "The end time must be after the start time."),
    ("time_entries", "chk_rejection_reason"): ConstraintMessage(
        "rejection_reason", "Say why the time is rejected, so its author can correct it."),
    ("time_entries", "time_entries_ticket_id_fkey"): ConstraintMessage("ticket_id", "That ticket does not exist."),
    ("time_entries", "time_entries_project_id_fkey"): ConstraintMessage("project_id", "That project does not exist."),
    ("time_entries", "time_entries_employee_id_fkey"): ConstraintMessage(
        "employee_id", "That employee does not exist."),
    # invoices
    ("invoices", "invoices_invoice_number_key"): ConstraintMessage(
        "invoice_number", "An invoice with this number already exists.", conflict=True),
    ("invoices", "chk_invoice_amounts"): ConstraintMessage(
        None, "Invoice amounts cannot be negative: discounts may not exceed the billed amount."),
    ("invoices", "chk_invoice_dates"): ConstraintMessage(
        "due_date", "The due date cannot be before the invoice date."),
    ("invoices", "chk_tax_rate"): ConstraintMessage(
        "tax_rate", "The tax rate must be at least 0 and below 1 (0.08 is 8 %)."),
    ("invoice_line_items", "chk_line_amounts"): ConstraintMessage(
        "quantity", "Quantity must be more than 0, the unit price cannot be negative, "
        "and the line total must equal quantity times unit price."),
    ("invoice_line_items", "idx_line_items_time_entry"): ConstraintMessage(
        "time_entry_id", "This time entry is already billed on another invoice.", conflict=True),
    ("invoice_line_items", "invoice_line_items_time_entry_id_fkey"): ConstraintMessage(
        "time_entry_id", "That time entry does not exist."),
    # issue 11: billing
    ("invoice_line_items", "idx_line_items_fee_month"): ConstraintMessage(
        None, "This contract month's fee is already billed on another invoice.", conflict=True),
    ("invoices", "chk_invoice_not_overpaid"): ConstraintMessage(
        "amount", "That is more than is still owed on this invoice.", conflict=True),
    ("invoices", "chk_invoice_period"): ConstraintMessage(
        "billing_period_end", "The period must end on or after its start."),
    ("payments", "chk_payment_amount"): ConstraintMessage("amount", "Enter an amount above 0."),
    ("payments", "chk_payment_method"): ConstraintMessage("method", "Choose how it was paid from the list."),
    ("invoices", "chk_cancelled_is_final"): ConstraintMessage(None, "A cancelled invoice stays cancelled.",
                                                              conflict=True),
    ("invoice_line_items", "chk_line_included_hours"): ConstraintMessage(
        None, "A line cannot use fewer than 0 included hours."),
    ("invoice_line_items", "chk_line_billing_month"): ConstraintMessage(
        None, "A line's billing month is the first day of a month."),
    ("invoice_runs", "chk_run_status"): ConstraintMessage(None, "A month-end run is running or done."),
    ("invoice_runs", "chk_run_period"): ConstraintMessage("month", "The run's period must end on or after its start."),
    ("invoice_runs", "chk_run_lanes"): ConstraintMessage(None, "A run has 1 to 16 lanes."),
    ("invoice_runs", "idx_invoice_runs_one_at_a_time"): ConstraintMessage(
        "month", "The month-end run for this month is running already.", conflict=True),
    ("invoice_run_items", "chk_run_outcome"): ConstraintMessage(None, "An outcome is made, nothing or failed."),
    # accounts
    ("accounts", "idx_accounts_email_lower"): ConstraintMessage(
        "email", "An account with this email address already exists.", conflict=True),
    ("accounts", "chk_account_email"): ConstraintMessage(
        "email", "Enter the email address without spaces around it."),
    ("accounts", "chk_failed_login_count"): ConstraintMessage(
        None, "The failed sign-in count cannot be negative."),
    ("auth_tokens", "chk_token_purpose"): ConstraintMessage(None, "A link is an invitation or a password reset."),
    ("auth_tokens", "chk_token_expiry"): ConstraintMessage(None, "A link must expire after it is made."),
    ("auth_tokens", "auth_tokens_token_hash_key"): ConstraintMessage(
        None, "This link already exists; ask for a new one.", conflict=True),
    ("login_sessions", "login_sessions_token_hash_key"): ConstraintMessage(
        None, "Sign in again.", conflict=True),
    ("accounts", "chk_account_owner"): ConstraintMessage(
        None, "An account belongs to exactly one contact or one employee."),
    ("accounts", "accounts_contact_id_key"): ConstraintMessage(
        "contact_id", "This contact already has a login.", conflict=True),
    ("accounts", "accounts_employee_id_key"): ConstraintMessage(
        "employee_id", "This employee already has a login.", conflict=True),
    # api_clients, api_tokens (migration 0013)
    ("api_clients", "api_clients_name_key"): ConstraintMessage(
        "name", "Another API client already has this name.", conflict=True),
    ("api_clients", "api_clients_client_key_key"): ConstraintMessage(
        None, "These client credentials exist already; create the client again.", conflict=True),
    ("api_clients", "chk_api_client_name"): ConstraintMessage(
        "name", "Name the client, without spaces around the name."),
    ("api_tokens", "api_tokens_token_hash_key"): ConstraintMessage(
        None, "This token exists already; ask for a new one.", conflict=True),
    ("api_tokens", "chk_api_token_expiry"): ConstraintMessage(
        None, "A token must expire after it is issued."),
    # webhook_subscriptions, webhook_deliveries, webhook_attempts (migration 0013)
    ("webhook_subscriptions", "chk_webhook_url"): ConstraintMessage(
        "url", "Enter an http:// or https:// address."),
    ("webhook_subscriptions", "chk_webhook_events"): ConstraintMessage(
        "event_types", "Choose at least one event."),
    ("webhook_subscriptions", "chk_webhook_previous_secret"): ConstraintMessage(
        None, "A previous secret needs the time it stops signing, and only then."),
    ("webhook_deliveries", "chk_webhook_delivery_status"): ConstraintMessage(
        None, "A delivery is pending, delivered or dead."),
    ("webhook_deliveries", "chk_webhook_delivery_attempts"): ConstraintMessage(
        None, "A delivery's attempts cannot be negative."),
    ("webhook_deliveries", "uq_webhook_delivery_event"): ConstraintMessage(
        None, "This event was already delivered to this subscription.", conflict=True),
    ("webhook_attempts", "uq_webhook_attempt_number"): ConstraintMessage(
        None, "This attempt of the delivery was already made.", conflict=True),
    ("webhook_attempts", "chk_webhook_attempt_number"): ConstraintMessage(
        None, "Attempts are numbered from 1."),
    # business hours, the holiday calendar, mail in (migration 0020)
    ("customers", "chk_customer_time_zone"): ConstraintMessage(
        "timezone", "Enter a time zone name like America/Denver."),
    ("service_contracts", "chk_contract_coverage"): ConstraintMessage(
        "coverage_days", "Cover around the clock (no days), or choose weekdays with a start before the end."),
    ("holidays", "holidays_day_key"): ConstraintMessage("day", "This day is a holiday already.", conflict=True),
    ("holidays", "chk_holiday_name"): ConstraintMessage("name", "Enter the holiday's name."),
    ("inbound_mails", "inbound_mails_message_id_key"): ConstraintMessage(
        None, "This mail was read already.", conflict=True),
    ("inbound_mails", "chk_inbound_outcome"): ConstraintMessage(
        None, "A mail is ticketed, replied, unmatched, ignored, attached or discarded."),
}

_GENERIC_BY_KIND: dict[type, str] = {
    pg_errors.UniqueViolation: "This value is already in use.",
    pg_errors.CheckViolation: "A value is out of the allowed range.",
    pg_errors.ForeignKeyViolation: "This refers to something that does not exist or is still in use.",
    pg_errors.NotNullViolation: "This field is required.",
}


def domain_error_for(exc: sa.exc.DBAPIError) -> DomainError | None:
    """The DomainError a user should see for a database error they caused, or None if it is a bug.

    Known constraints get their sentence; an unknown one of a user-caused kind (unique, check,
    foreign key, not null) still gets a generic sentence naming the column when PostgreSQL says it.
    """
    orig = exc.orig
    if not isinstance(orig, tuple(_GENERIC_BY_KIND)):
        return None
    diag = orig.diag
    if isinstance(orig, pg_errors.ForeignKeyViolation) and "is still referenced" in (
        diag.message_detail or ""
    ):
        return Conflict("This record is still in use elsewhere and cannot be removed.")
    known = CONSTRAINT_MESSAGES.get((diag.table_name or "", diag.constraint_name or ""))
    if known:
        kind = Conflict if known.conflict else Invalid
        return kind(known.message, field=known.field)
    field = diag.column_name
    message = _GENERIC_BY_KIND[type(orig)]
    if field:
        message = f"{field.replace('_', ' ').capitalize()}: {message[0].lower()}{message[1:]}"
    kind = Conflict if isinstance(orig, pg_errors.UniqueViolation) else Invalid
    return kind(message, field=field)


@contextmanager
def integrity_as_domain_errors(session):
    """Flush inside a savepoint and turn user-caused database errors into DomainErrors.

    The savepoint keeps the rest of the transaction usable after a refused write, so a view
    can show the message and still answer from the same session. Anything else propagates.

    :raises Invalid: a CHECK or NOT NULL constraint refused the data.
    :raises Conflict: a unique key, or a row still referenced.
    """
    savepoint = session.begin_nested()
    try:
        yield
        session.flush()
    except sa.exc.DBAPIError as exc:
        savepoint.rollback()
        error = domain_error_for(exc)
        if error is None:
            raise
        raise error from exc
    else:
        savepoint.commit()
