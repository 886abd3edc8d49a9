"""Who may see and do what: pure predicates over the principal (who is signed in) and the object.

Every view, HTMX endpoint and API handler asks these; none re-implements a rule. The roles and
contact flags are those of shared/DESIGN.md ("Who uses it"). A contact of a suspended customer
may read but not change anything.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from portal.models.base import AccountStatus, ActorType, EmployeeRole, EmploymentStatus
from portal.services.actors import Actor
from portal.services.statuses import PROJECTS_ENDED, TICKET_WORKER_ROLES, TICKETS_DONE



@dataclass(frozen=True)
class Principal:
    """Who acts, reduced to what rules need (no ORM object, so rules stay pure).

    One of four kinds: an employee or a contact (a person signed in with an account), an API
    client (an automation platform with scopes; the REST API), or the system itself (the worker's
    scheduled jobs, the seed). `actor` is the one way to say who acted, for the audit log.
    """

    account_id: int | None
    email: str
    name: str
    employee_id: int | None = None
    role: EmployeeRole | None = None
    contact_id: int | None = None
    customer_id: int | None = None
    customer_name: str | None = None
    customer_status: AccountStatus | None = None
    is_primary_contact: bool = False
    is_billing_contact: bool = False
    can_create_tickets: bool = False
    can_approve_projects: bool = False
    two_factor_enabled: bool = False
    session_version: int = 1
    client_id: int | None = None
    scopes: frozenset[str] = frozenset()
    is_system: bool = False
    ip_address: str | None = None  # where the request came from (the audit log's "from where")
    time_zone: str | None = None  # a contact's customer's zone: their pages show times in it (issue 15)

    @classmethod
    def system(cls, label: str = "system") -> "Principal":
        """The app itself: scheduled jobs of the worker, the demo data."""
        return cls(account_id=None, email="", name=label, is_system=True)

    @classmethod
    def api_client(cls, client_id: int, name: str, scopes: frozenset[str] | set[str],
                   ip_address: str | None = None) -> "Principal":
        return cls(account_id=None, email="", name=name, client_id=client_id, scopes=frozenset(scopes),
                   ip_address=ip_address)

    def at(self, ip_address: str | None) -> "Principal":
        """The same principal acting from `ip_address` (the web layer adds the request's address)."""
        return replace(self, ip_address=ip_address)

    @property
    def is_employee(self) -> bool:
        return self.employee_id is not None

    @property
    def is_contact(self) -> bool:
        return self.contact_id is not None

    @property
    def is_client(self) -> bool:
        return self.client_id is not None

    @property
    def read_only(self) -> bool:
        """A contact of a suspended customer: may look, may not change anything."""
        return self.is_contact and self.customer_status == AccountStatus.SUSPENDED

    @property
    def role_label(self) -> str:
        if self.role:
            return self.role.value.replace("_", " ").capitalize()
        if self.is_client:
            return "API client"
        if self.is_system:
            return "System"
        flags = [label for label, on in (
            ("Primary contact", self.is_primary_contact), ("Billing contact", self.is_billing_contact),
            ("Project sponsor", self.can_approve_projects)) if on]
        return ", ".join(flags) or "Contact"

    @property
    def actor(self) -> Actor:
        """Who acted, as the audit log records it."""
        if self.is_employee:
            return Actor(ActorType.EMPLOYEE, self.employee_id, self.name, self.ip_address)
        if self.is_contact:
            return Actor(ActorType.CONTACT, self.contact_id, self.name, self.ip_address)
        if self.is_client:
            return Actor(ActorType.API_CLIENT, self.client_id, self.name, self.ip_address)
        return Actor(ActorType.SYSTEM, None, self.name, self.ip_address)


def has_role(principal: Principal, *roles: EmployeeRole) -> bool:
    return principal.is_employee and principal.role in roles


def has_scope(principal: Principal, scope: str) -> bool:
    """An API client granted `scope` (e.g. "tickets:write")."""
    return principal.is_client and scope in principal.scopes


# The REST API's scopes: per resource and verb. A client gets only those an admin granted it;
# every predicate below answers for a client by its scopes, as it answers for people by role.
API_SCOPES: dict[str, str] = {
    "customers:read": "Read customers and their contacts",
    "customers:write": "Create and update customers (with their primary contact)",
    "contracts:read": "Read service contracts, fees included",
    "tickets:read": "Read tickets and their public replies",
    "tickets:internal": "Read internal notes on tickets too",
    "tickets:write": "Open tickets, change their status, assignment, priority and estimate",
    "time:read": "Read time entries",
    "time:write": "Log time for employees",
    "time:approve": "Approve time entries in the name of an employee allowed to approve them",
    "invoices:read": "Read invoices and their lines",
    "invoices:write": "Generate invoices",
    "projects:read": "Read projects, budgets included",
    "reports:read": "Read the business reports (MRR, renewals, utilization, SLA, profitability with internal cost, overdue, budget burn)",
}


def may_run_scheduled_work(p: Principal) -> bool:
    """The worker's scans (auto-close, overdue invoices, expiring contracts): the system, or an admin by hand."""
    return p.is_system or has_role(p, EmployeeRole.ADMIN)


# --- who may sign in -------------------------------------------------------------------------

def may_sign_in(account, employee=None, contact=None, customer=None) -> bool:
    """Active employees; contacts of active customers, and of suspended ones (read-only)."""
    if not account.is_active or not account.password_hash:
        return False
    if employee is not None:
        return employee.employment_status == EmploymentStatus.ACTIVE
    if contact is not None and customer is not None:
        return customer.account_status in (AccountStatus.ACTIVE, AccountStatus.SUSPENDED)
    return False


# --- areas (one per blueprint part) ---------------------------------------------------------

def may_use_portal(p: Principal) -> bool:
    return p.is_contact


def may_use_staff(p: Principal) -> bool:
    return p.is_employee


def may_change_anything(p: Principal) -> bool:
    return not p.read_only


# --- contacts --------------------------------------------------------------------------------

def may_open_ticket(p: Principal) -> bool:
    return p.is_contact and p.can_create_tickets and not p.read_only


def may_see_all_company_tickets(p: Principal) -> bool:
    return p.is_contact and p.is_primary_contact


def may_see_ticket(p: Principal, ticket) -> bool:
    if p.is_employee:
        return True
    if p.is_client:
        return has_scope(p, "tickets:read")
    return (ticket.customer_id == p.customer_id
            and (p.is_primary_contact or ticket.contact_id == p.contact_id))


def may_reply_to_ticket(p: Principal, ticket) -> bool:
    """Anyone who sees an open ticket and may change things; a closed ticket takes no reply."""
    return may_see_ticket(p, ticket) and may_change_anything(p) and ticket.status != "closed"


def may_see_internal_notes(p: Principal) -> bool:
    """Internal notes (and the files attached to them) are for staff only, and clients granted tickets:internal."""
    return p.is_employee or has_scope(p, "tickets:internal")


def may_rate_ticket(p: Principal, ticket) -> bool:
    """The contact who opened it, once it is resolved (or closed after that), once."""
    return (p.is_contact and not p.read_only and ticket.contact_id == p.contact_id
            and ticket.status in TICKETS_DONE and ticket.resolved_at is not None
            and ticket.customer_satisfaction is None)


def may_see_invoices(p: Principal) -> bool:
    if p.is_employee:
        return has_role(p, EmployeeRole.ACCOUNT_MANAGER, EmployeeRole.ADMIN)
    if p.is_client:
        return has_scope(p, "invoices:read")
    return p.is_billing_contact or p.is_primary_contact


def may_see_company_invoices(p: Principal) -> bool:
    """The portal's invoices pages: billing and primary contacts, for their own customer (staff use theirs)."""
    return p.is_contact and may_see_invoices(p)


def may_see_projects(p: Principal) -> bool:
    if p.is_employee:
        return True
    if p.is_client:
        return has_scope(p, "projects:read")
    return p.can_approve_projects or p.is_primary_contact


def may_see_company_projects(p: Principal) -> bool:
    """The portal's projects pages: sponsors and primary contacts, for their own customer (staff use theirs)."""
    return p.is_contact and may_see_projects(p)


def may_decide_phase(p: Principal, phase=None) -> bool:
    return p.is_contact and p.can_approve_projects and not p.read_only


def may_see_contract_usage(p: Principal) -> bool:
    return p.is_contact


@dataclass(frozen=True)
class UsageView:
    """What one contact sees on the contract usage page, beyond the hours every contact sees
    (included, used, waiting for approval, left or over)."""

    money: bool  # the monthly fee, the extra-hour rate, each entry's estimate and the total estimate
    all_tickets: bool  # entries of every ticket of the company; otherwise of the contact's own tickets only
    projects: bool  # entries of project work


def usage_view(p: Principal) -> UsageView:
    """Money for billing and primary contacts (who see the invoices); entries only of tickets the
    contact may open itself (its own; all for a primary contact) and of projects only for those
    who see the projects (sponsors, primary contacts)."""
    return UsageView(money=may_see_company_invoices(p), all_tickets=may_see_all_company_tickets(p),
                     projects=may_see_company_projects(p))


def may_edit_profile(p: Principal) -> bool:
    """A contact changes their own name, phones and communication preference, unless read-only."""
    return p.is_contact and not p.read_only


# --- staff -----------------------------------------------------------------------------------

def may_view_queue(p: Principal) -> bool:
    """Staff read every ticket; so do clients granted tickets:read."""
    return p.is_employee or has_scope(p, "tickets:read")


def may_work_tickets(p: Principal) -> bool:
    """Technicians, seniors and admins work tickets; project and account managers read them;
    clients granted tickets:write work them too."""
    return has_role(p, *TICKET_WORKER_ROLES) or has_scope(p, "tickets:write")


def may_update_ticket(p: Principal, ticket) -> bool:
    """Seniors and admins any ticket; a technician the ones assigned to them or to nobody."""
    if may_assign_to_anyone(p):
        return True
    return may_work_tickets(p) and ticket.assigned_employee_id in (None, p.employee_id)


def may_assign_ticket(p: Principal, ticket, employee_id: int | None) -> bool:
    """Seniors and admins assign to anyone; a technician only takes an unassigned (or own) ticket."""
    if may_assign_to_anyone(p):
        return True
    return (may_work_tickets(p) and employee_id == p.employee_id
            and ticket.assigned_employee_id in (None, p.employee_id))


def may_take_ticket(p: Principal, ticket) -> bool:
    """Offer "take this ticket": open work not already the principal's, which they may assign to themselves."""
    return (ticket.status != "closed" and ticket.assigned_employee_id != p.employee_id
            and may_assign_ticket(p, ticket, p.employee_id))


def may_write_on_ticket(p: Principal, ticket) -> bool:
    """A reply or an internal note from staff, or time logged on it: anyone who works tickets, until it is closed."""
    return may_work_tickets(p) and ticket.status != "closed"


def may_reassign_ticket(p: Principal, ticket) -> bool:
    """Offer the "assign to" choice: seniors and admins, on a ticket not closed."""
    return may_assign_to_anyone(p) and ticket.status != "closed"


def may_assign_to_anyone(p: Principal) -> bool:
    return has_role(p, EmployeeRole.SENIOR_TECHNICIAN, EmployeeRole.ADMIN) or has_scope(p, "tickets:write")


def may_bulk_update_tickets(p: Principal) -> bool:
    return has_role(p, EmployeeRole.SENIOR_TECHNICIAN, EmployeeRole.ADMIN)


def may_open_ticket_for_customer(p: Principal) -> bool:
    return may_work_tickets(p) or has_role(p, EmployeeRole.ACCOUNT_MANAGER)


def may_see_customer(p: Principal, customer_id: int) -> bool:
    if p.is_client:
        return has_scope(p, "customers:read")
    return p.is_employee or p.customer_id == customer_id


def may_read_customers(p: Principal) -> bool:
    """Staff read every customer and contact; clients granted customers:read too."""
    return p.is_employee or has_scope(p, "customers:read")


def may_read_contracts(p: Principal) -> bool:
    return p.is_employee or has_scope(p, "contracts:read")


def may_read_time(p: Principal) -> bool:
    """Every employee reads time entries (their own on the timesheet, the approvers all); clients by scope."""
    return p.is_employee or has_scope(p, "time:read")


def may_log_time_for(p: Principal, employee_id: int | None) -> bool:
    """Employees log their own time; a client granted time:write logs it for the employee it names."""
    if p.is_client:
        return has_scope(p, "time:write") and employee_id is not None
    return p.is_employee and employee_id in (None, p.employee_id)


def may_approve_time(p: Principal) -> bool:
    """Who has an approvals page at all: seniors, project managers, admins; clients granted time:approve
    (which approve in the name of an employee, judged by may_approve_time_entry as that employee)."""
    return (has_role(p, EmployeeRole.SENIOR_TECHNICIAN, EmployeeRole.PROJECT_MANAGER, EmployeeRole.ADMIN)
            or has_scope(p, "time:approve"))


def may_approve_time_entry(p: Principal, entry, project_manager_id: int | None = None) -> bool:
    """Never one's own; seniors approve support (ticket) time, project managers their projects' time, admins all.

    A client approves nothing by itself: `p` is the employee it names (timesheets.decide).
    """
    if not p.is_employee or entry.employee_id == p.employee_id:
        return False
    if p.role == EmployeeRole.ADMIN:
        return True
    if entry.ticket_id is not None:
        return p.role == EmployeeRole.SENIOR_TECHNICIAN
    return p.role == EmployeeRole.PROJECT_MANAGER and project_manager_id == p.employee_id


def may_manage_project(p: Principal, project=None) -> bool:
    if has_role(p, EmployeeRole.ADMIN):
        return True
    if not has_role(p, EmployeeRole.PROJECT_MANAGER):
        return False
    return project is None or project.project_manager_id == p.employee_id


def may_change_project(p: Principal, project) -> bool:
    """Its manager (or an admin) plans a project until it is completed or cancelled."""
    return may_manage_project(p, project) and project.project_status not in PROJECTS_ENDED


def may_change_time_entry(p: Principal, entry) -> bool:
    """An author corrects or deletes their own pending or rejected entry; approved time only through an approver."""
    return p.is_employee and entry.employee_id == p.employee_id and entry.approval_status != "approved"


def may_manage_customers(p: Principal) -> bool:
    return has_role(p, EmployeeRole.ACCOUNT_MANAGER, EmployeeRole.ADMIN) or has_scope(p, "customers:write")


def may_bill(p: Principal) -> bool:
    """Account managers and admins; the system too (the demo data, runs started by one of them);
    clients granted invoices:write."""
    return p.is_system or has_role(p, EmployeeRole.ACCOUNT_MANAGER, EmployeeRole.ADMIN) or has_scope(
        p, "invoices:write")


def may_read_reports(p: Principal) -> bool:
    return has_role(p, EmployeeRole.ACCOUNT_MANAGER, EmployeeRole.ADMIN)


def may_see_internal_rates(p: Principal) -> bool:
    return has_role(p, EmployeeRole.ACCOUNT_MANAGER, EmployeeRole.ADMIN)


def may_see_contract_money(p: Principal) -> bool:
    """Contract fees and rates on staff pages: account managers and admins, who sell and bill them;
    clients granted contracts:read (an automation renews and bills contracts)."""
    return has_role(p, EmployeeRole.ACCOUNT_MANAGER, EmployeeRole.ADMIN) or has_scope(p, "contracts:read")


def may_see_project_money(p: Principal, project) -> bool:
    """A project's budget, phase budgets and cost on staff pages: account managers, admins and the
    project's own manager (the customer's sponsors see theirs in the portal)."""
    if has_role(p, EmployeeRole.ACCOUNT_MANAGER, EmployeeRole.ADMIN) or has_scope(p, "projects:read"):
        return True
    return has_role(p, EmployeeRole.PROJECT_MANAGER) and project.project_manager_id == p.employee_id


def may_invite_employees(p: Principal) -> bool:
    return has_role(p, EmployeeRole.ADMIN)


def may_invite_contacts(p: Principal) -> bool:
    return has_role(p, EmployeeRole.ACCOUNT_MANAGER, EmployeeRole.ADMIN)


def may_manage_people(p: Principal) -> bool:
    return may_invite_employees(p) or may_invite_contacts(p)


def may_administer(p: Principal) -> bool:
    """Employees, API clients, webhook subscriptions, security settings, the audit log (people only:
    no scope grants it, so no client can make itself clients or read webhook secrets)."""
    return has_role(p, EmployeeRole.ADMIN)


def may_use_api(p: Principal) -> bool:
    """The REST API is for clients with a token (people use the pages)."""
    return p.is_client


def may_view_employees(p: Principal) -> bool:
    """The employees list and pages, rates included: admins, who manage them, and account managers,
    who price the work (DESIGN: internal cost rates are for admins and account managers only)."""
    return may_administer(p) or may_see_internal_rates(p)


def may_manage_employees(p: Principal) -> bool:
    """Hire, change, let go and hand over an employee's work: admins."""
    return may_administer(p)


def may_read_audit_log(p: Principal) -> bool:
    """Every recorded change, of everyone: admins (DESIGN: "an audit log that admins can read")."""
    return may_administer(p)


def may_use_two_factor(p: Principal) -> bool:
    return p.is_employee


def may_manage_contracts(p: Principal) -> bool:
    """Create, change and renew a customer's contracts (their prices): account managers and admins."""
    return has_role(p, EmployeeRole.ACCOUNT_MANAGER, EmployeeRole.ADMIN)


# --- mail in and the holiday calendar (issue 15) ------------------------------------------------

def may_handle_unmatched_mail(p: Principal) -> bool:
    """The unmatched mail list: account managers attach a mail to a customer or discard it; admins too."""
    return has_role(p, EmployeeRole.ACCOUNT_MANAGER, EmployeeRole.ADMIN)


def may_keep_holidays(p: Principal) -> bool:
    """The MSP's holiday calendar, which every business-hours SLA counts: admins keep it."""
    return has_role(p, EmployeeRole.ADMIN)


# --- reports ---------------------------------------------------------------------------------

# Who reads which report beside account managers and admins (who read them all): project managers
# the budget burn (their own projects), senior technicians utilization and SLA. Profitability shows
# internal cost, so it stays with account managers and admins (may_see_internal_rates).
REPORTS_BY_ROLE = {
    EmployeeRole.PROJECT_MANAGER: frozenset({"budget-burn"}),
    EmployeeRole.SENIOR_TECHNICIAN: frozenset({"utilization", "sla"}),
}


def may_read_report(p: Principal, name: str) -> bool:
    """One report: account managers and admins all; project managers budget burn; seniors utilization
    and SLA; clients granted reports:read all (an admin grants it)."""
    if has_scope(p, "reports:read") or may_read_reports(p):
        return True
    return p.is_employee and name in REPORTS_BY_ROLE.get(p.role, frozenset())


def may_read_any_report(p: Principal) -> bool:
    """The reports index (and its menu entry)."""
    return may_read_reports(p) or (p.is_employee and p.role in REPORTS_BY_ROLE)
