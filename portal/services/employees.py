"""Employees: hiring, changes, letting someone go, and handing their work to colleagues.

Admins manage employees; account managers read them, rates included (DESIGN: internal cost rates
are for admins and account managers). The rules are the seed's, said beside each field
(`FIELD_RULES`), checked here for the pages and the API alike, with the database's CHECKs and
unique keys behind them (services/integrity.py).

- A rate applies to time logged from then on: `timesheets.log_time` copies the client rate into
  each entry's `billing_rate`, so a change never reprices logged time.
- An employee who is no longer active is signed out at once (every `login_sessions` row of their
  login revoked, open invitation and reset links retired), and `auth.principal_for` refuses them
  on every later request and sign-in. Nothing of theirs is deleted: tickets, time and the audit
  log keep their name.
- The last active admin can be neither demoted nor deactivated. Every change locks the rows of
  the active admins (`SELECT ... FOR UPDATE`, in id order) before it counts them, so two admins
  demoting each other at the same moment are serialised: the second sees the first's change and
  is refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from datetime import date, datetime, timedelta
from decimal import Decimal

import sqlalchemy as sa

from portal.models import (
    Account,
    ApprovalStatus,
    AuthToken,
    Employee,
    EmployeeRole,
    EmploymentStatus,
    LoginSession,
    Project,
    ProjectStatus,
    SupportTicket,
    TimeEntry,
)
from portal.models.customers import EMAIL_PATTERN
from portal.services import clock, events, policy, projects, tickets
from portal.services.errors import Conflict, Forbidden, Invalid, NotFound
from portal.services.money import format_money
from portal.services.people import PHONE_MAX, PHONE_PATTERN
from portal.services.statuses import PROJECT_MANAGER_ROLES, PROJECTS_OPEN, TICKET_WORKER_ROLES, TICKETS_NOT_CLOSED

PER_PAGE = 50
MAX_PAGE = 10_000
NAME_MAX = 100
DEPARTMENT_MAX = 100
SKILLS_MAX = 5_000
HIRE_HORIZON = timedelta(days=90)  # someone hired today may start within the next three months
EARLIEST_DAY = date(1950, 1, 1)  # a typed "0202" is a typo, not a hire date
RATE_LIMIT = Decimal("10000")  # dollars an hour: beyond it, a slip of the keyboard
CAPACITY_MAX = Decimal("60")
DEFAULT_CAPACITY = Decimal("40")
NUMBER_PATTERN = re.compile(r"[A-Z0-9][A-Z0-9-]{0,9}")
EMAIL = re.compile(EMAIL_PATTERN, re.IGNORECASE)

ROLE_LABELS = {role: role.value.replace("_", " ").capitalize() for role in EmployeeRole}
STATUS_LABELS = {EmploymentStatus.ACTIVE: "Active", EmploymentStatus.INACTIVE: "Inactive",
                 EmploymentStatus.TERMINATED: "Terminated"}
STATUS_FILTERS = ("active", "inactive", "terminated", "any")

# The seed's rules, as the form says them beside each field (and the API documents them).
FIELD_RULES = {
    "employee_number": "Unique. Up to 10 letters, digits and dashes, like EMP006.",
    "first_name": "Required, up to 100 characters.",
    "last_name": "Required, up to 100 characters.",
    "email": "Unique, in any case: it is also their sign-in. Like dana.reyes@techserv.com.",
    "phone": "Optional. Digits with spaces, + - ( ), like +1 303 555 0100 x12.",
    "role": "What they may do in the portal; it applies from their next page.",
    "department": "Optional, up to 100 characters, like Service desk.",
    "hire_date": f"Not more than {HIRE_HORIZON.days} days ahead.",
    "hourly_rate_internal": "What an hour of theirs costs TechServ. More than $0, at most $10,000.00. "
                            "Admins and account managers see it.",
    "hourly_rate_client": "What a customer pays for an hour of theirs. More than $0, at most $10,000.00. "
                          "Applies to time logged from now on: time already logged keeps the rate it was logged with.",
    "capacity_hours_weekly": "Hours a week they are available, more than 0 and at most 60 (usually 40). "
                             "The utilization report divides by it.",
    "employment_status": "Inactive or terminated signs them out at once and refuses their sign-in; "
                         "their history stays.",
    "termination_date": "Only for a terminated employee: not before the hire date (empty: today).",
    "skills_certifications": "Optional.",
    "is_on_call": "",
}


@dataclass(frozen=True)
class EmployeeDetails:
    """An employee as an admin gives them (None or "": not given)."""

    employee_number: str = ""
    first_name: str = ""
    last_name: str = ""
    email: str = ""
    phone: str = ""
    role: EmployeeRole | None = None
    department: str = ""
    hire_date: date | None = None
    hourly_rate_internal: Decimal | None = None
    hourly_rate_client: Decimal | None = None
    capacity_hours_weekly: Decimal | None = None
    employment_status: EmploymentStatus | None = None  # None: active (a new employee)
    termination_date: date | None = None
    skills_certifications: str = ""
    is_on_call: bool = False

    @classmethod
    def of(cls, employee: Employee) -> "EmployeeDetails":
        """The details as stored (to fill the edit form)."""
        return cls(**{f.name: getattr(employee, f.name) if getattr(employee, f.name) is not None
                      else ("" if f.type == "str" else None) for f in fields(cls)})


FIELD_ORDER = [f.name for f in fields(EmployeeDetails)]


# --- the rules -------------------------------------------------------------------------------

def _words(value: str | None) -> str:
    return " ".join((value or "").split())


def _name(value, label: str) -> str:
    text = _words(value)
    if not text:
        raise Invalid(f"Enter the {label}.")
    if len(text) > NAME_MAX:
        raise Invalid(f"The {label} can be at most {NAME_MAX} characters.")
    return text


def _number(value) -> str:
    text = (value or "").strip().upper()
    if not text:
        raise Invalid("Enter the employee number, like EMP006.")
    if not NUMBER_PATTERN.fullmatch(text):
        raise Invalid("Use up to 10 letters, digits and dashes, like EMP006.")
    return text


def _email(value) -> str:
    text = (value or "").strip()
    if not text:
        raise Invalid("Enter their email address; it is also their sign-in.")
    if len(text) > 255 or not EMAIL.fullmatch(text):
        raise Invalid("Enter a valid email address, like dana.reyes@techserv.com.")
    return text


def _phone(value) -> str | None:
    text = _words(value)
    if not text:
        return None
    if len(text) > PHONE_MAX:
        raise Invalid(f"The phone number can be at most {PHONE_MAX} characters.")
    if not PHONE_PATTERN.fullmatch(text) or sum(c.isdigit() for c in text) < 4:
        raise Invalid("Enter the phone number in digits, for example +1 303 555 0100 x12.")
    return text


def _optional(value, limit: int, label: str) -> str | None:
    text = _words(value) if limit <= DEPARTMENT_MAX else (value or "").strip()
    if len(text) > limit:
        raise Invalid(f"The {label} can be at most {limit:,} characters.")
    return text or None


def _role(value: EmployeeRole | None) -> EmployeeRole:
    if value is None:
        raise Invalid("Choose a role.")
    return value


def _hire_date(value: date | None, today: date) -> date:
    if value is None:
        raise Invalid("Enter the hire date, like 2026-03-02.")
    latest = today + HIRE_HORIZON
    if value > latest:
        raise Invalid(f"The hire date can be at most {HIRE_HORIZON.days} days ahead "
                      f"({latest.day} {latest.strftime('%b %Y')} at the latest).")
    if value < EARLIEST_DAY:
        raise Invalid("Check the year of the hire date.")
    return value


def _rate(value: Decimal | None, label: str) -> Decimal:
    if value is None:
        raise Invalid(f"Enter the {label} in dollars an hour, like 95.00.")
    if not value.is_finite() or value <= 0:
        raise Invalid(f"The {label} must be more than $0.")
    if value > RATE_LIMIT:
        raise Invalid(f"The {label} can be at most {format_money(RATE_LIMIT)} an hour.")
    if value != value.quantize(Decimal("0.01")):
        raise Invalid(f"Give the {label} in dollars and cents (at most two decimals).")
    return value.quantize(Decimal("0.01"))


def _capacity(value: Decimal | None) -> Decimal:
    if value is None:
        raise Invalid("Enter the weekly capacity in hours, like 40.")
    if not value.is_finite() or not Decimal(0) < value <= CAPACITY_MAX:
        raise Invalid("The weekly capacity must be more than 0 and at most 60 hours.")
    if value != value.quantize(Decimal("0.1")):
        raise Invalid("Give the weekly capacity to a tenth of an hour at most, like 37.5.")
    return value.quantize(Decimal("0.1"))


def _collect(checks) -> tuple[dict, dict[str, str]]:
    values, errors = {}, {}
    for name, check in checks:
        try:
            values[name] = check()
        except Invalid as error:
            errors[name] = error.message
    return values, errors


def _checked(session, details: EmployeeDetails, employee: Employee | None, today: date) -> tuple[dict, dict[str, str]]:
    """(the values to store, the message of every field that breaks a rule). Reads, never writes."""
    values, errors = _collect([
        ("employee_number", lambda: _number(details.employee_number)),
        ("first_name", lambda: _name(details.first_name, "first name")),
        ("last_name", lambda: _name(details.last_name, "last name")),
        ("email", lambda: _email(details.email)),
        ("phone", lambda: _phone(details.phone)),
        ("role", lambda: _role(details.role)),
        ("department", lambda: _optional(details.department, DEPARTMENT_MAX, "department")),
        ("hire_date", lambda: _hire_date(details.hire_date, today)),
        ("hourly_rate_internal", lambda: _rate(details.hourly_rate_internal, "internal rate")),
        ("hourly_rate_client", lambda: _rate(details.hourly_rate_client, "client rate")),
        ("capacity_hours_weekly", lambda: _capacity(details.capacity_hours_weekly)),
        ("skills_certifications", lambda: _optional(details.skills_certifications, SKILLS_MAX,
                                                    "skills and certifications")),
    ])
    values["is_on_call"] = bool(details.is_on_call)
    status = details.employment_status or (EmploymentStatus.ACTIVE if employee is None else None)
    if status is None:
        errors["employment_status"] = "Choose a status."
    values["employment_status"] = status
    termination = details.termination_date
    if status == EmploymentStatus.TERMINATED:
        termination = termination or today
        if "hire_date" in values and termination < values["hire_date"]:
            errors["termination_date"] = "The termination date cannot be before the hire date."
        elif termination > today + HIRE_HORIZON:
            errors["termination_date"] = f"The termination date can be at most {HIRE_HORIZON.days} days ahead."
    elif termination is not None:
        errors["termination_date"] = "Only a terminated employee has a termination date: clear it, or choose Terminated."
    values["termination_date"] = termination if status == EmploymentStatus.TERMINATED else None

    number, email = values.get("employee_number"), values.get("email")
    if number or email:
        others = sa.true() if employee is None else Employee.employee_id != employee.employee_id
        other_logins = sa.true() if employee is None else Account.employee_id.is_distinct_from(employee.employee_id)
        number_taken, email_taken, login_taken = session.execute(sa.select(
            sa.exists().where(sa.func.upper(Employee.employee_number) == (number or ""), others),
            sa.exists().where(sa.func.lower(Employee.email) == (email or "").lower(), others),
            sa.exists().where(sa.func.lower(Account.email) == (email or "").lower(), other_logins),
        )).one()
        if number and number_taken:
            errors["employee_number"] = f"Another employee already has the number {number}."
        if email and email_taken:
            errors["email"] = "Another employee already uses this email address."
        elif email and login_taken:
            errors["email"] = "Another login (a customer contact's) already uses this email address."
    return values, errors


def employee_errors(session, principal: policy.Principal, details: EmployeeDetails,
                    employee_id: int | None = None) -> dict[str, str]:
    """What is wrong with these details, field by field, without saving anything (for the form's first answer)."""
    employee = session.get(Employee, employee_id) if employee_id else None
    return _checked(session, details, employee, clock.today())[1]


def _refuse(errors: dict[str, str]) -> None:
    if errors:
        field = next(name for name in FIELD_ORDER if name in errors)
        message = errors[field] if len(errors) == 1 else f"Check the {len(errors)} fields marked below."
        raise Invalid(message, field, errors)


# --- hiring and changing -----------------------------------------------------------------------

def create_employee(session, principal: policy.Principal, details: EmployeeDetails, *,
                    now: datetime | None = None) -> Employee:
    """Hire someone: an active employee without a login yet (invite them next); audited with every value.

    :raises Forbidden: only admins add employees.
    :raises Invalid: a field breaks a rule (every wrong field is in `errors`).
    :raises Conflict: the number or email was taken meanwhile (the unique keys).
    """
    if not policy.may_manage_employees(principal):
        raise Forbidden("Only administrators add employees.")
    values, errors = _checked(session, details, None, clock.today(now))
    _refuse(errors)
    employee = Employee(**values)
    session.add(employee)
    session.flush()
    events.emit(session, principal, "employee.created", employee, {"employee_id": employee.employee_id},
                changes={name: (None, value) for name, value in values.items()
                         if value not in (None, False) and name != "employment_status"})
    return employee


def _locked_with_admins(session, employee_id: int) -> tuple[Employee | None, list[Employee]]:
    """The employee and every active admin, locked in id order (so two changes never deadlock)."""
    rows = session.scalars(
        sa.select(Employee).where(sa.or_(
            Employee.employee_id == employee_id,
            sa.and_(Employee.role == EmployeeRole.ADMIN, Employee.employment_status == EmploymentStatus.ACTIVE)))
        .order_by(Employee.employee_id).with_for_update()
        .execution_options(populate_existing=True)).all()
    employee = next((e for e in rows if e.employee_id == employee_id), None)
    admins = [e for e in rows if e.role == EmployeeRole.ADMIN and e.employment_status == EmploymentStatus.ACTIVE]
    return employee, admins


def _end_sessions(session, employee_id: int, now: datetime) -> int:
    """Revoke every signed-in browser of the employee's login and retire its open links; returns how many sessions."""
    login = sa.select(Account.account_id).where(Account.employee_id == employee_id).scalar_subquery()
    ended = session.execute(sa.update(LoginSession).where(
        LoginSession.account_id == login, LoginSession.revoked_at.is_(None)).values(revoked_at=now)
        .execution_options(synchronize_session=False)).rowcount
    session.execute(sa.update(AuthToken).where(AuthToken.account_id == login, AuthToken.used_at.is_(None))
                    .values(used_at=now).execution_options(synchronize_session=False))
    return ended


def update_employee(session, principal: policy.Principal, employee_id: int, details: EmployeeDetails, *,
                    expected_updated_at: datetime | None = None, now: datetime | None = None) -> Employee:
    """Change an employee; audited with old and new values. Leaving active ends their sessions at once.

    :raises Forbidden: only admins change employees.
    :raises NotFound: no such employee.
    :raises Conflict: someone changed the employee since `expected_updated_at`.
    :raises Invalid: a field breaks a rule, or the change would leave no active admin.
    """
    if not policy.may_manage_employees(principal):
        raise Forbidden("Only administrators change employees.")
    now = now or clock.now()
    employee, admins = _locked_with_admins(session, employee_id)
    if employee is None:
        raise NotFound("No such employee.")
    if expected_updated_at is not None and employee.updated_at != expected_updated_at:
        raise Conflict(f"Someone changed {employee.full_name} since you opened this page. Here they are as they "
                       "are now; make your change again.")
    values, errors = _checked(session, details, employee, clock.today(now))
    was_admin = employee.role == EmployeeRole.ADMIN and employee.employment_status == EmploymentStatus.ACTIVE
    stays_admin = values.get("role") == EmployeeRole.ADMIN and values.get("employment_status") == EmploymentStatus.ACTIVE
    if was_admin and not stays_admin and "role" not in errors and "employment_status" not in errors \
            and not [a for a in admins if a.employee_id != employee.employee_id]:
        field = "role" if values.get("role") != EmployeeRole.ADMIN else "employment_status"
        errors[field] = (f"{employee.full_name} is the only active administrator. Make someone else an "
                         "administrator first, so somebody can still manage the portal.")
    _refuse(errors)

    changes = events.apply_changes(employee, values)
    if not changes:
        return employee
    if "email" in changes:
        session.execute(sa.update(Account).where(Account.employee_id == employee.employee_id)
                        .values(email=values["email"]).execution_options(synchronize_session="fetch"))
    if "employment_status" in changes and changes["employment_status"][0] == EmploymentStatus.ACTIVE:
        changes["open_sessions"] = (_end_sessions(session, employee.employee_id, now), 0)
    session.flush()
    events.emit(session, principal, "employee.updated", employee, {"employee_id": employee.employee_id},
                changes=changes)
    return employee


# --- reading ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class EmployeeFilters:
    q: str = ""
    role: EmployeeRole | None = None
    department: str = ""
    status: str = "active"  # an employment status, or "any"
    page: int = 1

    def as_args(self, **override) -> dict:
        """The filters as URL arguments (only those set), with `override` applied."""
        args = {"q": self.q, "role": self.role.value if self.role else "", "department": self.department,
                "status": self.status if self.status != "active" else "", "page": self.page if self.page > 1 else ""}
        args.update(override)
        return {k: v for k, v in args.items() if v not in ("", None, 1)}


@dataclass(frozen=True)
class EmployeeRow:
    employee: Employee
    login: str  # "active", "invited", "no_login" or "inactive"
    open_tickets: int


@dataclass(frozen=True)
class EmployeePage:
    rows: list[EmployeeRow]
    page: int
    pages: int
    total: int
    departments: list[str]
    filters: EmployeeFilters


def _login_state(password_hash, is_active) -> str:
    if is_active is None:
        return "no_login"
    if not is_active:
        return "inactive"
    return "active" if password_hash else "invited"


def _open_tickets_of(employee_id_column):
    return (sa.select(sa.func.count()).where(SupportTicket.assigned_employee_id == employee_id_column,
                                             SupportTicket.status.in_(TICKETS_NOT_CLOSED))
            .correlate(Employee).scalar_subquery())


def employee_list(session, principal: policy.Principal, filters: EmployeeFilters) -> EmployeePage:
    """Employees matching the filters, active first then by name, PER_PAGE a page; three queries whatever the data.

    :raises Forbidden: only admins and account managers read employees.
    """
    if not policy.may_view_employees(principal):
        raise Forbidden("Only administrators and account managers see the employees.")
    conditions = []
    q = _words(filters.q)[:100]
    if q:
        pattern = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        conditions.append(sa.or_(
            (Employee.first_name + " " + Employee.last_name).ilike(pattern), Employee.email.ilike(pattern),
            Employee.employee_number.ilike(pattern), Employee.phone.ilike(pattern),
            Employee.skills_certifications.ilike(pattern)))
    if filters.role:
        conditions.append(Employee.role == filters.role)
    if filters.department:
        conditions.append(sa.func.lower(Employee.department) == filters.department.lower())
    if filters.status in ("active", "inactive", "terminated"):
        conditions.append(Employee.employment_status == filters.status)
    total = session.scalar(sa.select(sa.func.count()).select_from(Employee).where(*conditions))
    pages = max(1, -(-total // PER_PAGE))
    page = max(1, min(filters.page, pages, MAX_PAGE))
    active_first = sa.case((Employee.employment_status == EmploymentStatus.ACTIVE, 0), else_=1)
    rows = session.execute(
        sa.select(Employee, Account.password_hash, Account.is_active, _open_tickets_of(Employee.employee_id))
        .outerjoin(Account, Account.employee_id == Employee.employee_id).where(*conditions)
        .order_by(active_first, Employee.last_name, Employee.first_name, Employee.employee_id)
        .limit(PER_PAGE).offset((page - 1) * PER_PAGE)).all()
    departments = list(session.scalars(sa.select(Employee.department).where(Employee.department.is_not(None))
                                       .distinct().order_by(Employee.department)))
    return EmployeePage([EmployeeRow(e, _login_state(pw, active), n) for e, pw, active, n in rows], page, pages,
                        total, departments, filters)


@dataclass(frozen=True)
class OpenWork:
    """What an employee still holds, and what waits on them."""

    tickets: list  # (ticket_id, ticket_number, title, status), not closed, assigned to them
    projects: list  # (project_id, project_number, project_name, project_status), open, managed by them
    awaiting_their_approval: tuple[int, Decimal]  # others' pending time on those projects: (entries, hours)
    own_pending: tuple[int, Decimal]  # their own time waiting for someone's approval: (entries, hours)

    @property
    def to_hand_over(self) -> bool:
        return bool(self.tickets or self.projects)


def open_work(session, employee_id: int) -> OpenWork:
    """The employee's open tickets and projects, and the pending time around them (three queries)."""
    ticket_rows = session.execute(
        sa.select(SupportTicket.ticket_id, SupportTicket.ticket_number, SupportTicket.title, SupportTicket.status)
        .where(SupportTicket.assigned_employee_id == employee_id, SupportTicket.status.in_(TICKETS_NOT_CLOSED))
        .order_by(SupportTicket.ticket_id)).all()
    project_rows = session.execute(
        sa.select(Project.project_id, Project.project_number, Project.project_name, Project.project_status)
        .where(Project.project_manager_id == employee_id, Project.project_status.in_(PROJECTS_OPEN))
        .order_by(Project.project_id)).all()
    on_their_projects = sa.and_(TimeEntry.employee_id != employee_id, TimeEntry.project_id.in_(
        sa.select(Project.project_id).where(Project.project_manager_id == employee_id,
                                            Project.project_status.in_(PROJECTS_OPEN))))
    pending = TimeEntry.approval_status == ApprovalStatus.PENDING
    awaiting, awaiting_hours, own, own_hours = session.execute(sa.select(
        sa.func.count().filter(on_their_projects), sa.func.coalesce(sa.func.sum(TimeEntry.hours_worked)
                                                                    .filter(on_their_projects), 0),
        sa.func.count().filter(TimeEntry.employee_id == employee_id),
        sa.func.coalesce(sa.func.sum(TimeEntry.hours_worked).filter(TimeEntry.employee_id == employee_id), 0),
    ).where(pending)).one()
    return OpenWork([tuple(r) for r in ticket_rows], [tuple(r) for r in project_rows],
                    (awaiting, awaiting_hours), (own, own_hours))


@dataclass(frozen=True)
class EmployeeView:
    employee: Employee
    login: str
    account_id: int | None  # their login, whose sign-ins and invitations the audit log keeps
    work: OpenWork
    is_last_admin: bool


def employee_view(session, principal: policy.Principal, employee_id: int) -> EmployeeView:
    """One employee with their login, open work and whether they are the last active admin.

    :raises Forbidden: only admins and account managers read employees. :raises NotFound: no such employee.
    """
    if not policy.may_view_employees(principal):
        raise Forbidden("Only administrators and account managers see the employees.")
    row = session.execute(
        sa.select(Employee, Account.account_id, Account.password_hash, Account.is_active,
                  sa.select(sa.func.count()).where(Employee.role == EmployeeRole.ADMIN,
                                                   Employee.employment_status == EmploymentStatus.ACTIVE)
                  .scalar_subquery())
        .outerjoin(Account, Account.employee_id == Employee.employee_id)
        .where(Employee.employee_id == employee_id)).one_or_none()
    if row is None:
        raise NotFound("No such employee.")
    employee, account_id, password_hash, is_active, admins = row
    last_admin = (admins == 1 and employee.role == EmployeeRole.ADMIN
                  and employee.employment_status == EmploymentStatus.ACTIVE)
    return EmployeeView(employee, _login_state(password_hash, is_active), account_id, open_work(session, employee_id),
                        last_admin)


# --- handing work over -----------------------------------------------------------------------

@dataclass(frozen=True)
class HandOver:
    tickets: int
    projects: int
    approvals: int  # others' pending time entries that now wait for the new project manager


def _recipient(session, employee_id: int | None, leaving: Employee, roles, field: str, what: str) -> Employee:
    if employee_id is None:
        raise Invalid(f"Choose who takes {what}.", field)
    if employee_id == leaving.employee_id:
        raise Invalid(f"Choose a colleague of {leaving.full_name}'s to take {what}.", field)
    colleague = session.get(Employee, employee_id)
    if colleague is None or colleague.employment_status != EmploymentStatus.ACTIVE or colleague.role not in roles:
        who = "technician, senior technician or admin" if roles == TICKET_WORKER_ROLES else "project manager or admin"
        raise Invalid(f"Choose an active {who} to take {what}.", field)
    return colleague


def hand_over_work(session, principal: policy.Principal, employee_id: int, *, tickets_to: int | None,
                   projects_to: int | None, now: datetime | None = None) -> HandOver:
    """Give all of an employee's open tickets to one colleague and their open projects to another, in one step.

    Tickets move through `tickets.assign` and projects through `projects.update_project` (each
    audited on its own row). The time others logged on those projects and still pending then waits
    for the new project manager. The employee's own pending time stays theirs: it is approved by
    others anyway (seniors, project managers, admins), never by its author.
    :raises Forbidden: only admins hand work over.
    :raises NotFound: no such employee.
    :raises Invalid: nothing to hand over, or no suitable colleague chosen (the field is named).
    """
    if not policy.may_manage_employees(principal):
        raise Forbidden("Only administrators hand an employee's work over.")
    now = now or clock.now()
    leaving = session.get(Employee, employee_id)
    if leaving is None:
        raise NotFound("No such employee.")
    open_tickets = session.scalars(
        sa.select(SupportTicket).where(SupportTicket.assigned_employee_id == employee_id,
                                       SupportTicket.status.in_(TICKETS_NOT_CLOSED))
        .order_by(SupportTicket.ticket_id).with_for_update()).all()
    open_projects = session.scalars(
        sa.select(Project).where(Project.project_manager_id == employee_id, Project.project_status.in_(PROJECTS_OPEN))
        .order_by(Project.project_id).with_for_update()).all()
    if not open_tickets and not open_projects:
        raise Invalid(f"{leaving.full_name} has no open tickets or projects to hand over.")
    errors = {}
    ticket_taker = project_taker = None
    for found, chosen, roles, field, what in (
            (open_tickets, tickets_to, TICKET_WORKER_ROLES, "tickets_to", "the tickets"),
            (open_projects, projects_to, PROJECT_MANAGER_ROLES, "projects_to", "the projects")):
        if found:
            try:
                taker = _recipient(session, chosen, leaving, roles, field, what)
            except Invalid as error:
                errors[field] = error.message
                continue
            if field == "tickets_to":
                ticket_taker = taker
            else:
                project_taker = taker
    if errors:
        field = next(iter(errors))
        raise Invalid(errors[field], field, errors)

    approvals = 0
    if open_projects:
        approvals = session.scalar(sa.select(sa.func.count()).where(
            TimeEntry.project_id.in_([p.project_id for p in open_projects]), TimeEntry.employee_id != employee_id,
            TimeEntry.approval_status == ApprovalStatus.PENDING))
    for ticket in open_tickets:
        tickets.assign(session, principal, ticket, ticket_taker.employee_id, expected_version=None, now=now)
    for project in open_projects:
        projects.update_project(session, principal, project, projects.ProjectPlan(
            project_name=project.project_name, customer_id=project.customer_id,
            project_manager_id=project_taker.employee_id, budget_amount=project.budget_amount,
            start_date=project.start_date, planned_end_date=project.planned_end_date,
            scope_description=project.scope_description or "", completion_percentage=project.completion_percentage,
            project_status=ProjectStatus(project.project_status)), now=now)
    changes = {}
    if open_tickets:
        changes.update(assigned_tickets=(len(open_tickets), 0), tickets_to_employee_id=(None, ticket_taker.employee_id))
    if open_projects:
        changes.update(managed_projects=(len(open_projects), 0),
                       projects_to_employee_id=(None, project_taker.employee_id))
    events.emit(session, principal, "employee.work_handed_over", leaving,
                {"employee_id": employee_id, "tickets": [t.ticket_id for t in open_tickets],
                 "projects": [p.project_id for p in open_projects]}, changes=changes)
    return HandOver(len(open_tickets), len(open_projects), approvals)


def suggested_number(session) -> str:
    """The next free EMP number after the highest one (a suggestion on the new-employee form)."""
    highest = session.scalar(sa.select(sa.func.max(sa.cast(sa.func.substring(Employee.employee_number, r"^EMP(\d{1,7})$"),
                                                         sa.Integer))))
    return f"EMP{(highest or 0) + 1:03d}"
