"""Projects and their phases: planning, budgets, the customer's approval of phases, status moves."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal

import sqlalchemy as sa

from portal.models import (
    Contact,
    Customer,
    Employee,
    EmployeeRole,
    PhaseStatus,
    Project,
    ProjectPhase,
    ProjectStatus,
)
from portal.services import clock, events, policy
from portal.services.errors import Conflict, Forbidden, Invalid, NotFound
from portal.services.money import format_money, to_cents
from portal.services.numbering import next_number
from portal.services.statuses import PROJECT_MANAGER_ROLES, PROJECTS_ENDED, PROJECTS_OPEN

P = ProjectStatus
PROJECT_MOVES = {
    P.PLANNING: (P.ACTIVE, P.ON_HOLD, P.CANCELLED),
    P.ACTIVE: (P.ON_HOLD, P.COMPLETED, P.CANCELLED),
    P.ON_HOLD: (P.ACTIVE, P.CANCELLED),
    P.COMPLETED: (),
    P.CANCELLED: (),
}
PH = PhaseStatus
PHASE_MOVES = {PH.PLANNING: (PH.ACTIVE, PH.CANCELLED), PH.ACTIVE: (PH.COMPLETED, PH.CANCELLED),
               PH.COMPLETED: (), PH.CANCELLED: ()}


@dataclass(frozen=True)
class ProjectPlan:
    """A project's plan as the manager gives it (None: not given)."""

    project_name: str = ""
    customer_id: int | None = None
    project_manager_id: int | None = None  # admins choose; a project manager manages their own
    budget_amount: Decimal | None = None
    start_date: date | None = None
    planned_end_date: date | None = None
    scope_description: str = ""
    completion_percentage: int | None = None  # None: keep (0 for a new project)
    project_status: ProjectStatus | None = None  # None: keep


@dataclass(frozen=True)
class PhasePlan:
    phase_name: str = ""
    deliverables: str = ""
    budget_allocation: Decimal | None = None
    start_date: date | None = None
    end_date: date | None = None
    requires_approval: bool = False


def _text(value: str, field: str, label: str, required: bool = True, limit: int = 255) -> str | None:
    value = (value or "").strip()
    if required and not value:
        raise Invalid(f"Enter the {label}.", field)
    if len(value) > limit:
        raise Invalid(f"The {label} can be at most {limit} characters.", field)
    return value or None


MONEY_LIMIT = Decimal("10000000000")  # budgets are NUMERIC(12, 2)


def _money(amount: Decimal | None, field: str, label: str, minimum: Decimal = Decimal(0)) -> Decimal:
    if amount is None:
        raise Invalid(f"Enter the {label}, like 12000 or 12000.50.", field)
    out_of_range = Invalid(f"The {label} must be {'more than' if minimum else 'at least'} {minimum} "
                           "and below 10,000,000,000.", field)
    # Range before rounding (rounding 1e30 to cents raises InvalidOperation), and again after it:
    # 9999999999.995 rounds up to the limit.
    if not amount.is_finite() or amount < minimum or amount >= MONEY_LIMIT:
        raise out_of_range
    amount = to_cents(amount)
    if amount < minimum or amount >= MONEY_LIMIT:
        raise out_of_range
    return amount.copy_abs() if amount == 0 else amount  # -0 is 0.00


def _day(value: date | None, field: str, label: str) -> date:
    if value is None:
        raise Invalid(f"Enter the {label}.", field)
    return value


def _collect(checks) -> dict:
    values, errors = {}, {}
    for name, check in checks:
        try:
            values[name] = check()
        except Invalid as error:
            errors[error.field or name] = error.message
    if errors:
        first = next(iter(errors))
        raise Invalid(errors[first], first, errors)
    return values


def planned_phases_total(project: Project) -> Decimal:
    """What the project's phases take of its budget (cancelled phases free theirs), from loaded phases."""
    return sum((p.budget_allocation for p in project.phases if p.phase_status != PH.CANCELLED), Decimal(0))


def _phases_total(session, project_id: int, without: int | None = None) -> Decimal:
    query = sa.select(sa.func.coalesce(sa.func.sum(ProjectPhase.budget_allocation), 0)).where(
        ProjectPhase.project_id == project_id, ProjectPhase.phase_status != PH.CANCELLED)
    if without is not None:
        query = query.where(ProjectPhase.phase_id != without)
    return session.scalar(query)


def _manager_id(session, principal: policy.Principal, employee_id: int | None) -> int:
    if not policy.has_role(principal, EmployeeRole.ADMIN):
        return principal.employee_id  # a project manager manages their own projects
    employee = session.get(Employee, employee_id) if employee_id else None
    if employee is None or employee.role not in PROJECT_MANAGER_ROLES or employee.employment_status != "active":
        raise Invalid("Choose a project manager.", "project_manager_id")
    return employee.employee_id


def _new_project_values(session, principal: policy.Principal, form: ProjectPlan) -> dict:
    def customer():
        found = session.get(Customer, form.customer_id) if form.customer_id else None
        if found is None:
            raise Invalid("Choose the customer.", "customer_id")
        return found.customer_id

    values = _collect([
        ("project_name", lambda: _text(form.project_name, "project_name", "project name")),
        ("customer_id", customer),
        ("project_manager_id", lambda: _manager_id(session, principal, form.project_manager_id)),
        ("budget_amount", lambda: _money(form.budget_amount, "budget_amount", "budget", Decimal("0.01"))),
        ("start_date", lambda: _day(form.start_date, "start_date", "start date")),
        ("planned_end_date", lambda: _day(form.planned_end_date, "planned_end_date", "planned end date")),
        ("scope_description", lambda: _text(form.scope_description, "scope_description", "scope", False, 20_000)),
    ])
    if values["planned_end_date"] < values["start_date"]:
        raise Invalid("The planned end date cannot be before the start date.", "planned_end_date")
    return values


def new_project_errors(session, principal: policy.Principal, form: ProjectPlan) -> dict[str, str]:
    """What is wrong with a new project's fields, field by field, without creating anything."""
    try:
        _new_project_values(session, principal, form)
    except Invalid as error:
        return error.errors
    return {}


def create_project(session, principal: policy.Principal, form: ProjectPlan, *,
                   now: datetime | None = None) -> Project:
    """Create a project in planning; its number comes from the sequence.

    :raises Forbidden: only project managers and admins create projects.
    :raises Invalid: a field is wrong (named; every wrong field is in `errors`).
    """
    if not policy.may_manage_project(principal):
        raise Forbidden("Only project managers and admins create projects.")
    values = _new_project_values(session, principal, form)
    project = Project(project_number=next_number(session, "project", (now or clock.now()).date()), **values)
    session.add(project)
    session.flush()
    events.emit(session, principal, "project.created", project,
                changes={"budget_amount": (None, project.budget_amount)})
    return project


def update_project(session, principal: policy.Principal, project: Project, form: ProjectPlan, *,
                   now: datetime | None = None) -> Project:
    """Change a project's plan and status (moves as in PROJECT_MOVES; a completed project gets its end date).

    :raises Forbidden: only its project manager or an admin.
    :raises Invalid: a field is wrong, a move is not allowed, or the budget falls below the phases' total.
    """
    if not policy.may_manage_project(principal, project):
        raise Forbidden("Only the project's manager or an admin changes it.")
    if project.project_status in PROJECTS_ENDED:
        raise Invalid(f"The project is {project.project_status.value}; it can no longer change.", "project_status")
    values = _collect([
        ("project_name", lambda: _text(form.project_name, "project_name", "project name")),
        ("budget_amount", lambda: _money(form.budget_amount, "budget_amount", "budget", Decimal("0.01"))),
        ("start_date", lambda: _day(form.start_date, "start_date", "start date")),
        ("planned_end_date", lambda: _day(form.planned_end_date, "planned_end_date", "planned end date")),
        ("scope_description", lambda: _text(form.scope_description, "scope_description", "scope", False, 20_000)),
        ("completion_percentage", lambda: _percent(form.completion_percentage, project.completion_percentage)),
        ("project_manager_id", lambda: _manager_id(session, principal, form.project_manager_id)
         if policy.has_role(principal, EmployeeRole.ADMIN) else project.project_manager_id),
    ])
    if values["planned_end_date"] < values["start_date"]:
        raise Invalid("The planned end date cannot be before the start date.", "planned_end_date")
    phases = _phases_total(session, project.project_id)
    if values["budget_amount"] < phases:
        raise Invalid(f"The phases already take {format_money(phases)}; the budget cannot be less.", "budget_amount")
    target = form.project_status or project.project_status
    if target != project.project_status and target not in PROJECT_MOVES[P(project.project_status)]:
        raise Invalid(f"A {project.project_status.value.replace('_', ' ')} project cannot become "
                      f"{target.value.replace('_', ' ')}.", "project_status")
    changes = {k: (getattr(project, k), v) for k, v in values.items() if getattr(project, k) != v}
    for key, value in values.items():
        setattr(project, key, value)
    if target != project.project_status:
        changes["project_status"] = (project.project_status, target)
        project.project_status = target
        if target == P.COMPLETED:
            project.actual_end_date = max(clock.today(now), project.start_date)
            project.completion_percentage = 100
    session.flush()
    if changes:
        events.emit(session, principal, "project.updated", project, changes=changes)
    return project


def _percent(value: int | None, current: int) -> int:
    if value is None:
        return current
    if not 0 <= value <= 100:
        raise Invalid("Completion must be between 0 and 100 percent.", "completion_percentage")
    return value


def _phase_values(session, project: Project, form: PhasePlan, phase_id: int | None) -> dict:
    values = _collect([
        ("phase_name", lambda: _text(form.phase_name, "phase_name", "phase name")),
        ("deliverables", lambda: _text(form.deliverables, "deliverables", "deliverables", False, 20_000)),
        ("budget_allocation", lambda: _money(form.budget_allocation, "budget_allocation", "phase budget")),
        ("start_date", lambda: _day(form.start_date, "start_date", "start date")),
        ("end_date", lambda: _day(form.end_date, "end_date", "end date")),
    ])
    if values["end_date"] < values["start_date"]:
        raise Invalid("The phase cannot end before it starts.", "end_date")
    if values["start_date"] < project.start_date:
        raise Invalid(f"The phase cannot start before the project ({project.start_date.isoformat()}).", "start_date")
    others = _phases_total(session, project.project_id, without=phase_id)
    if others + values["budget_allocation"] > project.budget_amount:
        left = project.budget_amount - others
        raise Invalid(f"The phases may not exceed the project budget of {format_money(project.budget_amount)}: "
                      f"{format_money(left)} is left for this phase.", "budget_allocation")
    values["requires_approval"] = bool(form.requires_approval)
    return values


def _approval_involved(phase: ProjectPhase) -> bool:
    """Once the customer was asked (or decided), the phase keeps needing their approval."""
    return any((phase.approval_requested_at, phase.approved_at, phase.rejected_at))


def _manageable(principal: policy.Principal, project: Project) -> None:
    if not policy.may_manage_project(principal, project):
        raise Forbidden("Only the project's manager or an admin changes its phases.")
    if project.project_status in PROJECTS_ENDED:
        raise Invalid(f"The project is {project.project_status.value}; its phases can no longer change.",
                      "phase_status")


def add_phase(session, principal: policy.Principal, project: Project, form: PhasePlan) -> ProjectPhase:
    """:raises Forbidden: not the project's manager or an admin. :raises Invalid: a field or the budget total."""
    _manageable(principal, project)
    phase = ProjectPhase(project_id=project.project_id, **_phase_values(session, project, form, None))
    session.add(phase)
    session.flush()
    events.emit(session, principal, "phase.added", phase,
                changes={"budget_allocation": (None, phase.budget_allocation)})
    return phase


def update_phase(session, principal: policy.Principal, phase: ProjectPhase, form: PhasePlan) -> ProjectPhase:
    """Change a phase's plan. Changing an approved phase's plan needs the sponsor's approval again.

    :raises Forbidden: not the project's manager or an admin. :raises Invalid: a field or the budget total.
    """
    _manageable(principal, phase.project)
    if phase.phase_status in (PH.COMPLETED, PH.CANCELLED):
        raise Invalid(f"The phase is {phase.phase_status.value}; it can no longer change.", "phase_status")
    values = _phase_values(session, phase.project, form, phase.phase_id)
    if phase.requires_approval and _approval_involved(phase):
        values["requires_approval"] = True  # no way around the customer once they are involved
    changes = {k: (getattr(phase, k), v) for k, v in values.items() if getattr(phase, k) != v}
    for key, value in values.items():
        setattr(phase, key, value)
    if phase.approved_at and changes.keys() & {"budget_allocation", "deliverables", "start_date", "end_date"} \
            and phase.phase_status == PH.PLANNING:
        phase.approved_at = None
        phase.approved_by_contact_id = None
        phase.approval_requested_at = None
        changes["approved_at"] = ("approved", "needs approval again")
    session.flush()
    if changes:
        events.emit(session, principal, "phase.updated", phase, changes=changes)
    return phase


def request_phase_approval(session, principal: policy.Principal, phase: ProjectPhase, *,
                           now: datetime | None = None) -> list[Contact]:
    """Ask the customer's sponsors to approve a phase; returns the sponsors to email.

    :raises Forbidden: not the project's manager or an admin.
    :raises Invalid: the phase is not planned, is approved already, or the customer has no sponsor.
    """
    _manageable(principal, phase.project)
    if phase.phase_status != PH.PLANNING:
        raise Invalid("Only a phase still in planning is sent for approval.", "phase_status")
    if phase.approved_at is not None:
        raise Invalid("The customer has approved this phase already.", "phase_status")
    sponsors = session.scalars(sa.select(Contact).where(
        Contact.customer_id == phase.project.customer_id, Contact.can_approve_projects.is_(True))
        .order_by(Contact.last_name)).all()
    if not sponsors:
        raise Invalid("This customer has no project sponsor: ask the account manager to name one.", "phase_status")
    phase.requires_approval = True
    phase.approval_requested_at = now or clock.now()
    phase.rejected_at = None
    phase.rejection_reason = None
    phase.rejected_by_contact_id = None
    session.flush()
    events.emit(session, principal, "phase.approval_requested", phase,
                {"project_id": phase.project_id, "asked_by": principal.name},
                changes={"sponsors": (None, [s.email for s in sponsors])})
    return list(sponsors)


def phase_moves(phase: ProjectPhase) -> tuple[PhaseStatus, ...]:
    """The moves a phase may make now: one that needs the customer's approval starts only once approved."""
    waiting = (phase.requires_approval or phase.rejected_at) and phase.approved_at is None
    return tuple(move for move in PHASE_MOVES[PH(phase.phase_status)] if not (move == PH.ACTIVE and waiting))


def change_phase_status(session, principal: policy.Principal, phase: ProjectPhase,
                        to: PhaseStatus | None) -> ProjectPhase:
    """Move a phase; one that requires approval becomes active only once a sponsor approved it.

    :raises Forbidden: not the project's manager or an admin.
    :raises Invalid: the move is not allowed, or approval is missing.
    """
    _manageable(principal, phase.project)
    if to is None:
        raise Invalid("Choose a status from the list.", "phase_status")
    target = PH(to)
    current = PH(phase.phase_status)
    if target not in PHASE_MOVES[current]:
        raise Invalid(f"A {current.value} phase cannot become {target.value}.", "phase_status")
    if target not in phase_moves(phase):
        raise Invalid("This phase waits for the customer's approval before it can start.", "phase_status")
    phase.phase_status = target
    session.flush()
    events.emit(session, principal, "phase.status_changed", phase, changes={"phase_status": (current, target)})
    return phase


def _burn(spent: Decimal, budget: Decimal) -> int:
    """Approved cost against budget, in percent."""
    return int(spent / budget * 100) if budget else 0


@dataclass(frozen=True)
class ProjectRow:
    project_id: int
    project_number: str
    project_name: str
    project_status: ProjectStatus
    planned_end_date: date
    company_name: str
    manager_name: str | None
    budget: Decimal | None = None  # None: this person may not see the project's money
    spent: Decimal | None = None

    @property
    def burn(self) -> int | None:
        return _burn(self.spent, self.budget) if self.budget is not None else None


@dataclass(frozen=True)
class ProjectMoney:
    """A project's money as its staff page shows it, for those who may see it (policy.may_see_project_money)."""

    budget: Decimal
    spent: Decimal  # approved time at billing rates
    phases_total: Decimal  # what the phases not cancelled take of the budget
    phase_budgets: dict[int, Decimal]

    @property
    def burn(self) -> int:
        return _burn(self.spent, self.budget)


def project_money(principal: policy.Principal, project: Project) -> ProjectMoney | None:
    """The budget, cost and phase budgets of a loaded project, or None for who may not see them."""
    if not policy.may_see_project_money(principal, project):
        return None
    return ProjectMoney(project.budget_amount, project.actual_cost, planned_phases_total(project),
                        {phase.phase_id: phase.budget_allocation for phase in project.phases})


def project_list(session, principal: policy.Principal) -> list[ProjectRow]:
    """Every project (staff read them all), open ones first; one query. Budget and cost only where
    policy.may_see_project_money lets the principal see them."""
    rows = session.execute(
        sa.select(Project.project_id, Project.project_number, Project.project_name, Project.project_status,
                  Project.planned_end_date, Customer.company_name,
                  (Employee.first_name + " " + Employee.last_name).label("manager_name"),
                  Project.project_manager_id, Project.budget_amount, Project.actual_cost)
        .join(Customer, Customer.customer_id == Project.customer_id)
        .outerjoin(Employee, Employee.employee_id == Project.project_manager_id)
        .order_by(sa.case({P.ACTIVE: 0, P.PLANNING: 1, P.ON_HOLD: 2}, value=Project.project_status, else_=3),
                  Project.planned_end_date)).all()
    return [ProjectRow(r.project_id, r.project_number, r.project_name, r.project_status, r.planned_end_date,
                       r.company_name, r.manager_name,
                       *((r.budget_amount, r.actual_cost) if policy.may_see_project_money(principal, r) else ()))
            for r in rows]


@dataclass(frozen=True)
class StaffPhase:
    """A phase on the staff project page, with what this person may do with it now."""

    phase: ProjectPhase
    approval: str | None  # customer_approval_state: None, not_requested, awaiting, approved, rejected
    moves: tuple[PhaseStatus, ...]
    may_ask_approval: bool
    may_edit: bool


def staff_phases(principal: policy.Principal, project: Project) -> list[StaffPhase]:
    """The project's phases in order, each with its approval state and the buttons this person gets."""
    may_change = policy.may_change_project(principal, project)
    views = []
    for phase in project.phases:
        approval = customer_approval_state(phase, project)
        views.append(StaffPhase(
            phase, approval, phase_moves(phase) if may_change else (),
            may_ask_approval=may_change and phase.phase_status == PH.PLANNING and approval != "approved",
            may_edit=may_change and phase.phase_status in (PH.PLANNING, PH.ACTIVE)))
    return views


def project_phase(session, project_id: int, phase_id: int) -> ProjectPhase:
    """:raises NotFound: no such phase in that project."""
    phase = session.get(ProjectPhase, phase_id)
    if phase is None or phase.project_id != project_id:
        raise NotFound("No such phase.")
    return phase


def project_for_staff(session, project_id: int) -> Project:
    """:raises NotFound: no such project."""
    project = session.scalar(sa.select(Project).where(Project.project_id == project_id).options(
        sa.orm.joinedload(Project.customer), sa.orm.joinedload(Project.project_manager),
        sa.orm.selectinload(Project.phases).joinedload(ProjectPhase.approved_by_contact),
        sa.orm.selectinload(Project.phases).joinedload(ProjectPhase.rejected_by_contact)))
    if project is None:
        raise NotFound("No such project.")
    return project


# --- the customer's side: projects in the portal and a sponsor's decision on a phase ------------


PORTAL_PAGE_SIZE = 20
REASON_LIMIT = 2_000
# Open work first; cancelled projects last, still listed so the customer can look them up.
_CUSTOMER_ORDER = sa.case({P.ACTIVE: 0, P.PLANNING: 1, P.ON_HOLD: 2, P.COMPLETED: 3},
                          value=Project.project_status, else_=4)


def awaiting_decision_clause():
    """A phase the customer's sponsors are asked to decide on now (the SQL twin of `customer_approval_state`)."""
    return sa.and_(ProjectPhase.requires_approval.is_(True), ProjectPhase.approval_requested_at.is_not(None),
                   ProjectPhase.approved_at.is_(None), ProjectPhase.rejected_at.is_(None),
                   ProjectPhase.phase_status == PH.PLANNING, Project.project_status.in_(DECIDABLE_PROJECTS))


# A phase of a completed or cancelled project is decided by nobody any more.
DECIDABLE_PROJECTS = PROJECTS_OPEN


def customer_approval_state(phase: ProjectPhase, project: Project | None = None) -> str | None:
    """What the customer is told about a phase's approval.

    None (no approval needed, or a phase no longer planned that nobody decided on), 'approved',
    'rejected', 'awaiting' (the manager asked; a sponsor may decide now) or 'not_requested'.
    """
    if not phase.requires_approval:
        return None
    if phase.approved_at is not None:
        return "approved"
    if phase.rejected_at is not None:
        return "rejected"
    if phase.phase_status != PH.PLANNING or (project is not None and project.project_status not in DECIDABLE_PROJECTS):
        return None
    return "awaiting" if phase.approval_requested_at is not None else "not_requested"


@dataclass(frozen=True)
class CustomerPhase:
    phase: ProjectPhase
    approval: str | None  # see customer_approval_state

    @property
    def awaiting(self) -> bool:
        return self.approval == "awaiting"


@dataclass(frozen=True)
class CustomerProject:
    """A project as its customer sees it: no internal costs or rates, the manager by name only."""

    project: Project
    phases: list[CustomerPhase]
    manager_name: str | None

    @property
    def awaiting(self) -> int:
        return sum(1 for p in self.phases if p.awaiting)

    @property
    def budget_used(self) -> int:
        """Approved work (at the customer's billing rates) against the budget, in percent."""
        budget = self.project.budget_amount
        return int(self.project.actual_cost / budget * 100) if budget else 0


@dataclass(frozen=True)
class CustomerProjectsPage:
    rows: list[CustomerProject]
    page: int
    pages: int
    total: int
    awaiting: int  # phases awaiting a sponsor's decision, over all the company's projects


def _may_see_company_projects(principal: policy.Principal) -> None:
    if not policy.may_see_company_projects(principal):
        raise Forbidden("Your company's project sponsors and primary contacts see its projects.")


def _customer_project(project: Project, manager_first: str | None, manager_last: str | None) -> CustomerProject:
    manager = " ".join(part for part in (manager_first, manager_last) if part) or None
    phases = sorted(project.phases, key=lambda p: (p.start_date, p.phase_id))  # in order, ties as planned
    return CustomerProject(project, [CustomerPhase(p, customer_approval_state(p, project)) for p in phases], manager)


def _with_manager_name():
    # Contacts may read only an employee's id and names (column grants): never load the whole row.
    return (sa.select(Project, Employee.first_name, Employee.last_name)
            .outerjoin(Employee, Employee.employee_id == Project.project_manager_id))


def customer_projects(session, principal: policy.Principal, page: int = 1) -> CustomerProjectsPage:
    """The contact's company's projects, 20 a page, open ones first and cancelled ones last; three queries.

    :raises Forbidden: the contact is neither a sponsor nor the primary contact (or is staff).
    """
    _may_see_company_projects(principal)
    mine = Project.customer_id == principal.customer_id
    total, awaiting = session.execute(sa.select(
        sa.select(sa.func.count()).select_from(Project).where(mine).scalar_subquery(),
        sa.select(sa.func.count()).select_from(ProjectPhase).join(Project, Project.project_id == ProjectPhase.project_id)
        .where(mine, awaiting_decision_clause()).scalar_subquery())).one()
    pages = max(1, -(-total // PORTAL_PAGE_SIZE))
    page = max(1, min(page, pages))
    rows = session.execute(
        _with_manager_name().where(mine)
        .order_by(_CUSTOMER_ORDER, Project.start_date.desc(), Project.project_id.desc())
        .limit(PORTAL_PAGE_SIZE).offset((page - 1) * PORTAL_PAGE_SIZE)
        .options(sa.orm.selectinload(Project.phases))).all()
    return CustomerProjectsPage([_customer_project(*row) for row in rows], page, pages, total, awaiting)


def customer_project(session, principal: policy.Principal, project_id: int) -> CustomerProject:
    """One of the contact's company's projects with its phases and who decided on them; two queries.

    :raises Forbidden: the contact is neither a sponsor nor the primary contact (or is staff).
    :raises NotFound: no such project, or another customer's.
    """
    _may_see_company_projects(principal)
    row = session.execute(
        _with_manager_name().where(Project.project_id == project_id, Project.customer_id == principal.customer_id)
        .options(sa.orm.selectinload(Project.phases).joinedload(ProjectPhase.approved_by_contact),
                 sa.orm.selectinload(Project.phases).joinedload(ProjectPhase.rejected_by_contact))
        .execution_options(populate_existing=True)).one_or_none()
    if row is None:
        raise NotFound("No such project.")
    return _customer_project(*row)


@dataclass(frozen=True)
class PhaseDecision:
    """What happened, for the page's answer and the project manager's email."""

    phase: ProjectPhase
    project: Project
    approved: bool
    reason: str | None
    decided_by: str
    company_name: str | None
    decided_at: datetime
    manager_told: bool = False  # the project manager is emailed once the decision commits


def _day_text(moment: datetime) -> str:
    return f"{moment.day} {moment:%b %Y}"


def _already_decided(principal: policy.Principal, phase: ProjectPhase) -> str | None:
    def who(contact_id, contact):
        if contact_id == principal.contact_id:
            return "You"
        return contact.full_name if contact is not None else "Another sponsor"

    if phase.approved_at is not None:
        return (f"{who(phase.approved_by_contact_id, phase.approved_by_contact)} approved this phase on "
                f"{_day_text(phase.approved_at)}; it cannot be decided again.")
    if phase.rejected_at is not None:
        return (f"{who(phase.rejected_by_contact_id, phase.rejected_by_contact)} rejected this phase on "
                f"{_day_text(phase.rejected_at)}; the project manager will revise it and ask again.")
    return None


def decide_phase(session, principal: policy.Principal, phase_id_or_phase: int | ProjectPhase, *, approve: bool,
                 reason: str | None, now: datetime | None = None,
                 project_id: int | None = None) -> PhaseDecision:
    """A sponsor approves, or rejects saying why, a phase the project manager asked them about.

    The phase's row is locked (SELECT ... FOR UPDATE) while deciding, so two sponsors deciding at
    once cannot both win: the second sees the first's decision and is refused.

    :raises Forbidden: not a sponsor, or the customer's account is suspended (read-only).
    :raises NotFound: no such phase among the contact's company's projects (or not in `project_id`).
    :raises Conflict: the phase was decided already (says who and when).
    :raises Invalid: the phase needs no approval, was not sent for approval, or is no longer planned;
        a rejection without a reason or with one over 2,000 characters (field `reason`).
    """
    now = now or clock.now()
    if not policy.may_decide_phase(principal):
        if principal.is_contact and principal.read_only:
            raise Forbidden("Your company's account is suspended, so the portal is read-only.")
        raise Forbidden("Only your company's project sponsors approve or reject phases.")
    phase_id = phase_id_or_phase.phase_id if isinstance(phase_id_or_phase, ProjectPhase) else phase_id_or_phase
    query = (sa.select(ProjectPhase, Project).join(Project, Project.project_id == ProjectPhase.project_id)
             .where(ProjectPhase.phase_id == phase_id, Project.customer_id == principal.customer_id)
             .with_for_update(of=ProjectPhase).execution_options(populate_existing=True))
    if project_id is not None:
        query = query.where(ProjectPhase.project_id == project_id)
    row = session.execute(query).one_or_none()
    if row is None:
        raise NotFound("No such phase.")
    phase, project = row
    decided = _already_decided(principal, phase)
    if decided:
        raise Conflict(decided)
    if not phase.requires_approval:
        raise Invalid("This phase does not need your approval.")
    if phase.phase_status != PH.PLANNING:
        raise Invalid(f"This phase is {phase.phase_status.value}; only a planned phase can be approved or rejected.")
    if project.project_status not in DECIDABLE_PROJECTS:
        raise Invalid(f"This project is {project.project_status.value.replace('_', ' ')}: its phases are not "
                      "decided any more.")
    if phase.approval_requested_at is None:
        raise Invalid("The project manager has not asked for your approval of this phase yet.")
    text = None
    if not approve:
        text = (reason or "").strip()
        if not text:
            raise Invalid("Say why you reject the phase, so the project manager can revise it.", "reason")
        if len(text) > REASON_LIMIT:
            raise Invalid(f"The reason can be at most {REASON_LIMIT:,} characters (it has {len(text):,}).", "reason")
        if "\x00" in text:
            raise Invalid("The reason contains a character that is not allowed.", "reason")
    if approve:
        phase.approved_at = now
        phase.approved_by_contact_id = principal.contact_id
        changes = {"approved_at": (None, now), "approved_by_contact_id": (None, principal.contact_id)}
    else:
        phase.rejected_at = now
        phase.rejection_reason = text
        phase.rejected_by_contact_id = principal.contact_id
        changes = {"rejected_at": (None, now), "rejection_reason": (None, text),
                   "rejected_by_contact_id": (None, principal.contact_id)}
    session.flush()
    events.emit(session, principal, "phase.approved" if approve else "phase.rejected", phase,
                {"project_id": project.project_id, "phase_id": phase.phase_id, "customer_id": project.customer_id,
                 "decision": "approved" if approve else "rejected"}, changes=changes)
    decision = PhaseDecision(phase, project, approve, text, principal.name, principal.customer_name, now)
    # The project manager is emailed by the worker; say so only when there is someone to tell.
    return replace(decision, manager_told=project_manager_address(session, project) is not None)


def project_manager_address(session, project: Project) -> tuple[str, str] | None:
    """(name, email) of the project's manager, for the mail telling them of a sponsor's decision.

    A contact's transaction may read no employee's email (column grants): it asks the database
    function portal_project_manager_email (migration 0007), which only contacts may call and which
    answers only for a project of their own customer. Staff read the column. The address goes into
    the mail only, never onto a page.
    """
    if project.project_manager_id is None:
        return None
    as_contact = session.scalar(sa.select(sa.func.portal_customer_id())) is not None
    email = (sa.func.portal_project_manager_email(project.project_id) if as_contact else Employee.email)
    row = session.execute(sa.select(Employee.first_name + " " + Employee.last_name, email)
                          .where(Employee.employee_id == project.project_manager_id)).one_or_none()
    return (row[0], row[1]) if row and row[1] else None
