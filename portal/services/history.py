"""What happened, as people read it: every audit event in words, in one place.

The audit log keeps column names, ids and enum values ("assigned_employee_id": 3 -> 5,
"waiting_customer"); staff read "Reassigned from Amanda Lee to John Davis" and "In progress →
Waiting for the customer". The ticket page's history, the audit log page and its CSV all ask
`describe` here, so an event reads the same everywhere. Names of the people and objects an event
mentions are resolved in one query (`Labels.load`), however many events a page shows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import sqlalchemy as sa

from portal.models import (
    Account,
    AuditEvent,
    Contact,
    Customer,
    Employee,
    Invoice,
    Project,
    ProjectPhase,
    ServiceContract,
    SupportTicket,
    TimeEntry,
)
from portal.services import clock
from portal.services.money import format_money
from portal.services.numbers import plain_number

HISTORY_LENGTH = 30

STATUS_LABELS = {
    "open": "Open",
    "assigned": "Assigned",
    "in_progress": "In progress",
    "waiting_customer": "Waiting for the customer",
    "resolved": "Resolved",
    "closed": "Closed",
}

# The kinds of object the audit log knows, by table: what a person calls one.
OBJECT_KINDS = {
    "support_tickets": "Ticket",
    "invoices": "Invoice",
    "projects": "Project",
    "project_phases": "Project phase",
    "customers": "Customer",
    "contacts": "Contact",
    "service_contracts": "Contract",
    "employees": "Employee",
    "time_entries": "Time entry",
    "accounts": "Login",
    "portal_settings": "Settings",
}

ACTOR_KINDS = {"employee": "Employee", "contact": "Contact", "api_client": "API client", "system": "System"}

# Every action the portal records, in words (the audit log's filter and column).
ACTION_LABELS = {
    "ticket.created": "Ticket opened",
    "ticket.assigned": "Ticket assigned",
    "ticket.status_changed": "Ticket status changed",
    "ticket.updated": "Ticket details changed",
    "ticket.replied": "Reply to a ticket",
    "ticket.note_added": "Internal note added",
    "ticket.rated": "Ticket rated",
    "time_entry.logged": "Time logged",
    "time_entry.corrected": "Time corrected",
    "time_entry.deleted": "Time deleted",
    "time_entry.approved": "Time approved",
    "time_entry.rejected": "Time rejected",
    "project.created": "Project created",
    "project.updated": "Project changed",
    "phase.added": "Phase added",
    "phase.updated": "Phase changed",
    "phase.status_changed": "Phase status changed",
    "phase.approval_requested": "Phase approval asked",
    "phase.approved": "Phase approved",
    "phase.rejected": "Phase rejected",
    "invoice.generated": "Invoice generated",
    "invoice.sent": "Invoice sent",
    "invoice.paid": "Invoice paid",
    "invoice.payment_recorded": "Payment recorded",
    "invoice.overdue": "Invoice overdue",
    "contract.expiring": "Contract expiring",
    "customer.created": "Customer added",
    "customer.updated": "Customer changed",
    "contact.created": "Contact added",
    "contact.updated": "Contact changed",
    "contract.created": "Contract made",
    "contract.updated": "Contract changed",
    "contract.renewed": "Contract renewed",
    "contact.profile_updated": "Contact profile changed",
    "employee.created": "Employee added",
    "employee.updated": "Employee changed",
    "employee.work_handed_over": "Work handed over",
    "invitation.sent": "Invitation sent",
    "invitation.accepted": "Invitation accepted",
    "login.succeeded": "Signed in",
    "login.password_ok": "Password accepted",
    "login.failed": "Sign-in failed",
    "login.locked": "Sign-in locked",
    "login.throttled": "Sign-ins throttled",
    "logout": "Signed out",
    "password.changed": "Password changed",
    "password.reset": "Password reset",
    "password.reset_requested": "Password reset asked",
    "password.reset_throttled": "Password resets throttled",
    "two_factor.enabled": "Two-factor turned on",
    "two_factor.disabled": "Two-factor turned off",
    "two_factor.recovery_code_used": "Recovery code used",
    "settings.changed": "Settings changed",
    "seed.loaded": "Demo data loaded",
}

FIELD_LABELS = {
    "employee_number": "Employee number", "first_name": "First name", "last_name": "Last name",
    "email": "Email", "phone": "Phone", "mobile": "Mobile", "role": "Role", "department": "Department",
    "hire_date": "Hire date", "termination_date": "Termination date", "employment_status": "Status",
    "hourly_rate_internal": "Internal rate", "hourly_rate_client": "Client rate",
    "capacity_hours_weekly": "Weekly capacity", "skills_certifications": "Skills and certifications",
    "is_on_call": "On call", "communication_preference": "How to contact",
    "status": "Status", "priority": "Priority", "estimated_hours": "Estimate",
    "assigned_employee_id": "Assigned to", "project_manager_id": "Project manager",
    "project_name": "Name", "budget_amount": "Budget", "start_date": "Start", "planned_end_date": "Planned end",
    "scope_description": "Scope", "completion_percentage": "Completion", "project_status": "Status",
    "phase_name": "Name", "deliverables": "Deliverables", "budget_allocation": "Phase budget", "end_date": "End",
    "requires_approval": "Needs the sponsor's approval", "phase_status": "Status",
    "approved_at": "Approved", "approved_by_contact_id": "Approved by", "rejected_at": "Rejected",
    "rejected_by_contact_id": "Rejected by", "rejection_reason": "Reason",
    "hours_worked": "Hours", "approval_status": "Approval", "work_date": "Date", "billing_rate": "Billing rate",
    "invoice_status": "Status", "total_amount": "Total", "paid_amount": "Amount paid", "sent_at": "Sent",
    "paid_at": "Paid on", "due_date": "Due",
    "require_two_factor_for_employees": "Two-factor sign-in required for all employees",
    "open_sessions": "Open sessions",
}
# The CRM's fields (customers, contacts, contracts).
FIELD_LABELS.update({
    "company_name": "Company", "industry": "Industry", "company_size": "Size", "service_tier": "Tier",
    "account_status": "Status", "account_manager_id": "Account manager", "primary_contact_email": "Main email",
    "account_health_score": "Health score", "tax_id": "Tax ID", "timezone": "Time zone",
    "billing_address": "Billing address", "service_address": "Service address", "title": "Job title",
    "is_primary_contact": "Primary contact", "is_billing_contact": "Billing contact",
    "can_approve_projects": "Project sponsor", "can_create_tickets": "May open tickets",
    "contract_status": "Status", "monthly_fee": "Monthly fee", "included_hours": "Included hours",
    "hourly_rate_additional": "Extra hour rate", "response_time_hours": "Response time (h)",
    "resolution_time_hours": "Resolution time (h)", "price_increase_annual": "Annual increase (%)",
    "auto_renewal": "Renews automatically", "terms_conditions": "Terms", "renews": "Renews",
})
MONEY_FIELDS = {"hourly_rate_internal", "hourly_rate_client", "budget_amount", "budget_allocation", "total_amount",
                "paid_amount", "billing_rate", "monthly_fee", "hourly_rate_additional", "subtotal", "tax_amount"}
HOUR_FIELDS = {"hours_worked", "estimated_hours", "actual_hours"}
PERCENT_FIELDS = {"completion_percentage"}
STATUS_FIELDS = {"status", "invoice_status", "phase_status", "project_status", "employment_status",
                 "approval_status"}
STATUS_FIELDS |= {"account_status", "contract_status"}  # the CRM's


@dataclass(frozen=True)
class ObjectLabel:
    """How a row is named: "TKT-2026-000123" with "Printer jams", "Denver Tech" with nothing."""

    label: str
    detail: str | None = None


@dataclass
class Labels:
    """Names of the employees, contacts and rows some events mention, read in one query."""

    employees: dict[int, str] = field(default_factory=dict)
    contacts: dict[int, str] = field(default_factory=dict)
    objects: dict[tuple[str, int], ObjectLabel] = field(default_factory=dict)
    found: tuple[str, int] | None = None  # the row `find` named, if it exists

    def employee(self, employee_id) -> str:
        return self.employees.get(employee_id, "a former employee") if isinstance(employee_id, int) else "nobody"

    def contact(self, contact_id) -> str:
        return self.contacts.get(contact_id, "a former contact") if isinstance(contact_id, int) else "nobody"

    @classmethod
    def load(cls, session, events, *, also: dict[str, set[int]] | None = None,
             find: tuple[str, str] | None = None, always: bool = False) -> "Labels":
        """The labels `events` need (their rows and the people their changes name), in one query.

        `also` adds ids to look up by table; `find` = (table, number or name) looks one row up by its
        human-facing number too (the audit log's object filter), so its page needs no query more.
        `always`: query even when nothing is wanted, so a page costs the same whatever it shows.
        """
        wanted: dict[str, set[int]] = {table: set() for table in _LABEL_QUERIES}
        for table, ids in (also or {}).items():
            wanted.setdefault(table, set()).update(ids)
        for event in events:
            if event.table_name in wanted and event.row_id is not None:
                wanted[event.table_name].add(event.row_id)
            for name, change in (event.changes or {}).items():
                if isinstance(change, dict):
                    kind = "employees" if _is_employee_field(name) else "contacts" if _is_contact_field(name) else None
                    if kind:
                        wanted[kind].update(v for v in change.values() if isinstance(v, int))
        parts = []
        for table, build in _LABEL_QUERIES.items():
            number = find[1] if find and find[0] == table else None
            if wanted[table] or number or (always and not parts and table == "employees"):
                parts.append(build(wanted[table], number))
        labels = cls()
        if not parts:
            return labels
        for table, row_id, label, detail, found in session.execute(
                sa.union_all(*parts) if len(parts) > 1 else parts[0]):
            labels.objects[(table, row_id)] = ObjectLabel(label, detail)
            if found:
                labels.found = (table, row_id)
            if table == "employees":
                labels.employees[row_id] = label
            elif table == "contacts":
                labels.contacts[row_id] = label
        return labels


def _is_employee_field(name: str) -> bool:
    return name.endswith("employee_id") or name in ("project_manager_id", "account_manager_id")


def _is_contact_field(name: str) -> bool:
    return name.endswith("contact_id")


def _row(table: str, key, label, detail, number):
    return [sa.literal(table).label("table_name"), key.label("row_id"), sa.cast(label, sa.Text).label("label"),
            sa.cast(detail if detail is not None else sa.null(), sa.Text).label("detail"),
            (find_condition(table, number) if number is not None else sa.false()).label("found")]


def _by_id_or_number(table: str, key, ids, number):
    conditions = [key.in_(sorted(ids))] if ids else []
    if number is not None:
        conditions.append(find_condition(table, number))
    return sa.or_(*conditions) if conditions else sa.false()


def find_condition(table: str, text: str):
    """The condition that finds a row of `table` by what people call it: its number (TKT-2026-000123,
    INV-2026-00042, PRJ-2026-007, CON-2026-001, EMP001), email or company name.

    Numbers are stored in capitals and compared as such, so the unique index on them serves the lookup.
    """
    text = text.strip()
    if table == "support_tickets":
        return SupportTicket.ticket_number == text.upper()
    if table == "invoices":
        return Invoice.invoice_number == text.upper()
    if table == "projects":
        return Project.project_number == text.upper()
    if table == "service_contracts":
        return ServiceContract.contract_number == text.upper()
    if table == "employees":
        return sa.or_(sa.func.upper(Employee.employee_number) == text.upper(),
                      sa.func.lower(Employee.email) == text.lower())
    if table == "contacts":
        return sa.func.lower(Contact.email) == text.lower()
    if table == "accounts":
        return sa.func.lower(Account.email) == text.lower()
    if table == "customers":
        return sa.func.lower(Customer.company_name) == text.lower()
    return sa.false()


FINDABLE = {"support_tickets", "invoices", "projects", "service_contracts", "employees", "contacts", "accounts",
            "customers"}
ROW_KEYS = {"support_tickets": SupportTicket.ticket_id, "invoices": Invoice.invoice_id, "projects": Project.project_id,
            "service_contracts": ServiceContract.contract_id, "employees": Employee.employee_id,
            "contacts": Contact.contact_id, "accounts": Account.account_id, "customers": Customer.customer_id}


def _employees(ids, number):
    return sa.select(*_row("employees", Employee.employee_id, Employee.first_name + " " + Employee.last_name,
                           Employee.employee_number, number)).where(
        _by_id_or_number("employees", Employee.employee_id, ids, number))


def _contacts(ids, number):
    return sa.select(*_row("contacts", Contact.contact_id, Contact.first_name + " " + Contact.last_name,
                           Customer.company_name, number)).join(Customer, Customer.customer_id == Contact.customer_id).where(
        _by_id_or_number("contacts", Contact.contact_id, ids, number))


def _tickets(ids, number):
    return sa.select(*_row("support_tickets", SupportTicket.ticket_id, SupportTicket.ticket_number,
                           SupportTicket.title, number)).where(
        _by_id_or_number("support_tickets", SupportTicket.ticket_id, ids, number))


def _invoices(ids, number):
    return sa.select(*_row("invoices", Invoice.invoice_id, Invoice.invoice_number, Customer.company_name, number)).join(
        Customer, Customer.customer_id == Invoice.customer_id).where(
        _by_id_or_number("invoices", Invoice.invoice_id, ids, number))


def _projects(ids, number):
    return sa.select(*_row("projects", Project.project_id, Project.project_number, Project.project_name, number)).where(
        _by_id_or_number("projects", Project.project_id, ids, number))


def _phases(ids, number):
    return sa.select(*_row("project_phases", ProjectPhase.phase_id, ProjectPhase.phase_name,
                           Project.project_number, number)).join(Project, Project.project_id == ProjectPhase.project_id).where(
        _by_id_or_number("project_phases", ProjectPhase.phase_id, ids, number))


def _customers(ids, number):
    return sa.select(*_row("customers", Customer.customer_id, Customer.company_name, None, number)).where(
        _by_id_or_number("customers", Customer.customer_id, ids, number))


def _contracts(ids, number):
    return sa.select(*_row("service_contracts", ServiceContract.contract_id, ServiceContract.contract_number,
                           Customer.company_name, number)).join(Customer, Customer.customer_id == ServiceContract.customer_id).where(
        _by_id_or_number("service_contracts", ServiceContract.contract_id, ids, number))


def _time_entries(ids, number):
    hours = sa.func.rtrim(sa.func.rtrim(sa.func.to_char(TimeEntry.hours_worked, "FM9990.99"), "0"), ".")  # 1.50 -> 1.5
    label = sa.func.concat(hours, " h on ", sa.func.to_char(TimeEntry.work_date, "FMDD Mon YYYY"))
    return sa.select(*_row("time_entries", TimeEntry.entry_id, label,
                           Employee.first_name + " " + Employee.last_name, number)).join(
        Employee, Employee.employee_id == TimeEntry.employee_id).where(
        _by_id_or_number("time_entries", TimeEntry.entry_id, ids, number))


def _accounts(ids, number):
    return sa.select(*_row("accounts", Account.account_id, Account.email, None, number)).where(
        _by_id_or_number("accounts", Account.account_id, ids, number))


_LABEL_QUERIES = {
    "employees": _employees, "contacts": _contacts, "support_tickets": _tickets, "invoices": _invoices,
    "projects": _projects, "project_phases": _phases, "customers": _customers, "service_contracts": _contracts,
    "time_entries": _time_entries, "accounts": _accounts,
}


# --- values in words -------------------------------------------------------------------------

def _label(value) -> str:
    if value is None:
        return "none"
    return str(value).replace("_", " ").capitalize()


def _status(value) -> str:
    return STATUS_LABELS.get(value, _label(value))


def _hours(value) -> str:
    return "none" if value is None else f"{plain_number(value)} h"


def _money(value) -> str:
    try:
        return format_money(Decimal(str(value)))
    except (InvalidOperation, ValueError):
        return str(value)


def _moment(value: str) -> str:
    """An ISO date or date-time from the log, as the pages write it ("3 Mar 2026", "3 Mar 2026 14:05 MST")."""
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            return f"{day.day} {day.strftime('%b %Y')}"
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value
    if moment.tzinfo is None:
        return moment.strftime("%d %b %Y %H:%M").lstrip("0")
    local = moment.astimezone(clock.business_zone())
    return f"{local.strftime('%d %b %Y %H:%M').lstrip('0')} {local.tzname()}"


def value_in_words(name: str, value: Any, labels: Labels) -> str:
    """One logged value as people read it: names for ids, money, hours, dates, labels for codes."""
    if value is None or value == "":
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if _is_employee_field(name):
        return labels.employee(value)
    if _is_contact_field(name):
        return labels.contact(value)
    if name in MONEY_FIELDS:
        return _money(value)
    if name in HOUR_FIELDS:
        return _hours(value)
    if name == "capacity_hours_weekly":
        return f"{plain_number(value)} h a week"
    if name in PERCENT_FIELDS:
        return f"{plain_number(value)} %"
    if name == "status":
        return _status(value)
    if name in STATUS_FIELDS or name in ("role", "priority", "communication_preference", "throttle", "reason"):
        return _label(value)
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "none"
    if isinstance(value, dict):
        return ", ".join(f"{k} {v}" for k, v in value.items())
    if isinstance(value, str) and len(value) >= 10 and value[4:5] == "-" and value[7:8] == "-":
        return _moment(value)
    text = plain_number(value) if isinstance(value, (int, Decimal)) else str(value)
    return text if len(text) <= 120 else text[:119] + "…"


def _field(name: str) -> str:
    return FIELD_LABELS.get(name, _label(name))


def _change(name: str, change: dict, labels: Labels) -> str:
    old, new = change.get("old"), change.get("new")
    if old is None or old == "":
        return f"{_field(name)}: {value_in_words(name, new, labels)}"
    if new is None or new == "":
        return f"{_field(name)} cleared (was {value_in_words(name, old, labels)})"
    return f"{_field(name)}: {value_in_words(name, old, labels)} → {value_in_words(name, new, labels)}"


def changes_in_words(changes: dict | None, labels: Labels, *, skip: tuple[str, ...] = ()) -> str:
    """Every logged change as "Field: old → new", joined by "; "."""
    return "; ".join(_change(name, change, labels) for name, change in (changes or {}).items()
                     if isinstance(change, dict) and name not in skip)


def _new(changes: dict, name: str):
    return (changes.get(name) or {}).get("new")


def _old(changes: dict, name: str):
    return (changes.get(name) or {}).get("old")


def _assignment(change: dict, labels: Labels) -> str:
    old, new = change.get("old"), change.get("new")
    if new is None:
        return f"Unassigned (was {labels.employee(old)})" if old is not None else "Unassigned"
    if old is None:
        return f"Assigned to {labels.employee(new)}"
    return f"Reassigned from {labels.employee(old)} to {labels.employee(new)}"


def _plural(n, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _ticket(event, changes: dict, labels: Labels) -> str | None:
    action = event.action
    if action in ("ticket.created", "ticket.opened"):  # "opened": its name before the events had webhooks
        priority = _new(changes, "priority")
        return f"Opened with priority {_label(priority)}" if priority else "Opened"
    if action == "ticket.status_changed" and "status" in changes:
        return f"{_status(_old(changes, 'status'))} → {_status(_new(changes, 'status'))}"
    if action == "ticket.assigned" and "assigned_employee_id" in changes:
        return _assignment(changes["assigned_employee_id"], labels)
    if action == "ticket.updated":
        parts = []
        if "priority" in changes:
            parts.append(f"Priority: {_label(_old(changes, 'priority'))} → {_label(_new(changes, 'priority'))}")
        if "estimated_hours" in changes:
            parts.append(f"Estimate: {_hours(_old(changes, 'estimated_hours'))} → "
                         f"{_hours(_new(changes, 'estimated_hours'))}")
        return "; ".join(parts) or "Details changed"
    if action == "ticket.replied":
        return "Replied to the customer" if event.actor_type == "employee" else "Replied"
    if action == "ticket.note_added":
        return "Added an internal note"
    if action == "ticket.rated":
        rating = _new(changes, "customer_satisfaction")
        return f"Rated the work {rating} out of 5" if rating else "Rated the work"
    return None


def _employee(event, changes: dict, labels: Labels) -> str | None:
    action = event.action
    if action == "employee.created":
        name = " ".join(filter(None, (_new(changes, "first_name"), _new(changes, "last_name"))))
        role = _label(_new(changes, "role")).lower() if _new(changes, "role") else "employee"
        number = _new(changes, "employee_number")
        rate = _new(changes, "hourly_rate_client")
        text = f"Added {name}{f' ({number})' if number else ''} as {role}"
        return text + (f", client rate {_money(rate)}" if rate is not None else "")
    if action == "employee.updated":
        parts = [changes_in_words(changes, labels, skip=("open_sessions",))]
        sessions = _old(changes, "open_sessions")
        if "open_sessions" in changes:
            parts.append(f"signed out of {_plural(sessions, 'open session')}" if sessions else "had no open session")
        return "; ".join(p for p in parts if p) or "Nothing changed"
    if action == "employee.work_handed_over":
        parts = []
        tickets, projects = _old(changes, "assigned_tickets"), _old(changes, "managed_projects")
        if tickets:
            parts.append(f"{_plural(tickets, 'open ticket')} to {labels.employee(_new(changes, 'tickets_to_employee_id'))}")
        if projects:
            parts.append(f"{_plural(projects, 'open project')} (and the time awaiting approval on them) to "
                         f"{labels.employee(_new(changes, 'projects_to_employee_id'))}")
        return "Handed over " + " and ".join(parts) if parts else "Handed over nothing"
    return None


def _accounts(event, changes: dict, labels: Labels) -> str | None:
    action = event.action
    if action == "login.failed":
        reason = _new(changes, "reason")
        email = _new(changes, "email")
        return "Sign-in failed" + (f": {reason}" if reason else "") + (f" ({email})" if email and not reason else "")
    if action == "login.locked":
        return f"Sign-in locked until {value_in_words('locked_until', _new(changes, 'locked_until'), labels)}"
    if action == "login.throttled":
        return f"Sign-ins from this address held back after {_new(changes, 'failures')} failures"
    if action == "invitation.sent":
        return f"Sent an invitation to {_new(changes, 'email')}"
    if action == "password.reset_requested":
        sent = _new(changes, "sent")
        return "Asked for a password reset link" + ("" if sent else " (none sent)")
    if action == "password.reset_throttled":
        return f"Password reset held back ({_label(_new(changes, 'throttle')).lower()} limit reached)"
    if action == "two_factor.recovery_code_used":
        return f"Signed in with a recovery code ({_new(changes, 'recovery_codes_left')} left)"
    if action == "settings.changed":
        return changes_in_words(changes, labels)
    simple = {"login.succeeded": "Signed in", "login.password_ok": "Password accepted, second factor next",
              "logout": "Signed out", "password.changed": "Changed their password",
              "password.reset": "Chose a new password with a reset link",
              "invitation.accepted": "Accepted the invitation and chose a password",
              "two_factor.enabled": "Turned on two-factor sign-in", "two_factor.disabled": "Turned off two-factor sign-in",
              "seed.loaded": "Loaded the demo data"}
    return simple.get(action)


def _work(event, changes: dict, labels: Labels) -> str | None:
    action = event.action
    if action == "time_entry.logged":
        return f"Logged {_hours(_new(changes, 'hours_worked'))}"
    if action == "time_entry.deleted":
        return f"Deleted {_hours(_old(changes, 'hours_worked'))}"
    if action == "time_entry.approved":
        return "Approved"
    if action == "time_entry.rejected":
        return "Rejected"
    if action == "project.created":
        return f"Created with a budget of {_money(_new(changes, 'budget_amount'))}"
    if action == "phase.added":
        return f"Added with a budget of {_money(_new(changes, 'budget_allocation'))}"
    if action == "phase.approval_requested":
        return f"Asked the customer's sponsors to approve ({value_in_words('sponsors', _new(changes, 'sponsors'), labels)})"
    if action == "phase.approved":
        return f"Approved by {labels.contact(_new(changes, 'approved_by_contact_id'))}"
    if action == "phase.rejected":
        return (f"Rejected by {labels.contact(_new(changes, 'rejected_by_contact_id'))}: "
                f"{value_in_words('rejection_reason', _new(changes, 'rejection_reason'), labels)}")
    if action == "invoice.generated":
        return f"Generated, total {_money(_new(changes, 'total_amount'))}"
    if action == "contract.expiring":
        return f"Ends in {_plural(_new(changes, 'days_until_expiration'), 'day')}: renewal reminder sent"
    return None


def describe(event, labels: Labels) -> str:
    """What the event changed, in words: "Reassigned from Amanda Lee to John Davis", "Client rate: $100.00 → $110.00"."""
    changes = event.changes or {}
    for words in (_ticket, _employee, _accounts, _work):
        text = words(event, changes, labels)
        if text:
            return text
    return changes_in_words(changes, labels) or ACTION_LABELS.get(event.action, _label(event.action.split(".")[-1]))


def who(event) -> str:
    """Who acted, as the log names them; scheduled work is "TechServ Portal (what ran)"."""
    if event.actor_type == "system":
        return "TechServ Portal" if not event.actor_label or event.actor_label == "system" \
            else f"TechServ Portal ({event.actor_label})"
    return event.actor_label or _label(event.actor_type)


def action_label(action: str) -> str:
    return ACTION_LABELS.get(action, _label(action.replace(".", " ")))


# --- a ticket's history ----------------------------------------------------------------------

@dataclass(frozen=True)
class HistoryEntry:
    at: datetime
    who: str    # the person (or "TechServ Portal" for scheduled work) as the audit log names them
    what: str   # "Assigned to John Davis", "Priority: Medium → High"


def ticket_history(session, ticket_id: int, *, limit: int = HISTORY_LENGTH) -> list[HistoryEntry]:
    """The ticket's latest changes, newest first, in words (two queries, one without events). Raises nothing."""
    events = session.scalars(
        sa.select(AuditEvent).where(AuditEvent.table_name == "support_tickets", AuditEvent.row_id == ticket_id)
        .order_by(AuditEvent.occurred_at.desc(), AuditEvent.event_id.desc()).limit(limit)).all()
    # The ticket itself is on the page already: only the people its events name are looked up.
    labels = Labels.load(session, [_WithoutRow(event) for event in events]) if events else Labels()
    return [HistoryEntry(at=event.occurred_at, who=who(event), what=describe(event, labels)) for event in events]


class _WithoutRow:
    """An event seen without its row, so only the names in its changes are looked up."""

    table_name = None
    row_id = None

    def __init__(self, event) -> None:
        self.changes = event.changes
