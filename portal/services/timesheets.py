"""Time entries: logged against one ticket or one project, pending until someone else approves them."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal

import sqlalchemy as sa

from portal.models import (
    SUPPORT_WORK,
    ApprovalStatus,
    Customer,
    Employee,
    PendingTimeTotal,
    Project,
    ProjectStatus,
    SupportTicket,
    TicketStatus,
    TimeEntry,
    WorkCategory,
)
from portal.services import clock, events, policy
from portal.services.errors import Conflict, Forbidden, Invalid, NotFound
from portal.services.statuses import PROJECTS_ENDED

MAX_HOURS = Decimal("24")
MAX_DECISIONS = 1000
EARLIEST_WEEK, LATEST_WEEK = date(1900, 1, 1), date(2999, 12, 1)


@dataclass(frozen=True)
class NewTimeEntry:
    """A time entry as its author gives it. Hours come from start and end when both are given."""

    work_date: date | None
    hours: Decimal | None = None
    start_time: time | None = None
    end_time: time | None = None
    work_category: WorkCategory | None = WorkCategory.SUPPORT
    is_billable: bool = True
    description: str = ""
    ticket_id: int | None = None
    project_id: int | None = None
    employee_id: int | None = None  # whose time: an API client names the employee; people log their own


def _check_date(day: date | None, today: date) -> date:
    if day is None:
        raise Invalid("Enter the date of the work.", "work_date")
    if day > today + timedelta(days=1):
        raise Invalid("Time cannot be logged for a future day.", "work_date")
    if day < today - timedelta(days=366):
        raise Invalid("That date is more than a year ago.", "work_date")
    return day


def hours_between(start: time, end: time) -> Decimal:
    """Hours from start to end on one day, to the minute. :raises Invalid: end is not after start."""
    minutes = (end.hour * 60 + end.minute) - (start.hour * 60 + start.minute)
    if minutes <= 0:
        raise Invalid("The end time must be after the start time.", "end_time")
    return (Decimal(minutes) / 60).quantize(Decimal("0.01"))


def _validated(session, principal: policy.Principal, data: NewTimeEntry, now: datetime) -> tuple[object, dict]:
    """(the ticket or project, the entry's checked values). The rules of log_time and update_entry.

    :raises Forbidden: only employees log time.
    :raises NotFound: no such ticket or project.
    :raises Invalid: a field is wrong (named).
    """
    if not (principal.is_employee or policy.may_log_time_for(principal, data.employee_id)):
        if principal.is_client and data.employee_id is None:
            raise Invalid("Name the employee whose time this is.", "employee_id")
        raise Forbidden("Only employees log time.")
    if (data.ticket_id is None) == (data.project_id is None):
        raise Invalid("Log time against one ticket or one project.", "ticket_id")
    if data.ticket_id is not None:
        work = session.get(SupportTicket, data.ticket_id)
        if work is None:
            raise NotFound("No such ticket.", "ticket_id")
        if work.status == TicketStatus.CLOSED:
            raise Invalid("The ticket is closed; it takes no more time.", "ticket_id")
    else:
        work = session.get(Project, data.project_id)
        if work is None:
            raise NotFound("No such project.", "project_id")
        if work.project_status in PROJECTS_ENDED:
            raise Invalid(f"The project is {ProjectStatus(work.project_status).value}; it takes no more time.",
                          "project_id")
    day = _check_date(data.work_date, clock.today(now))
    start, end = data.start_time, data.end_time
    if start and end:
        hours = hours_between(start, end)
    else:
        hours = data.hours
        if hours is None:
            raise Invalid("Enter the hours, like 1.5, or a start and an end time.", "hours")
    if not hours.is_finite() or not (Decimal(0) < hours <= MAX_HOURS):
        raise Invalid("Hours must be more than 0 and at most 24.", "hours")
    if hours != hours.quantize(Decimal("0.01")):
        raise Invalid("Use at most two decimals for hours (1.25, not 1.255).", "hours")
    category = data.work_category
    if category is None:
        raise Invalid("Choose a category from the list.", "work_category")
    description = (data.description or "").strip()
    if not description:
        raise Invalid("Say what you did.", "description")
    return work, {
        "work_date": day, "start_time": start if start and end else None, "end_time": end if start and end else None,
        "hours_worked": hours, "description": description[:5000], "work_category": category,
        "is_billable": bool(data.is_billable),
    }


def log_time(session, principal: policy.Principal, data: NewTimeEntry, *,
             now: datetime | None = None) -> TimeEntry:
    """Log the principal's own time, pending approval. The customer comes from the ticket or project.

    Hours come from start and end when both are given. The billing rate is the employee's client rate.
    :raises Forbidden: only employees log time.
    :raises NotFound: no such ticket or project.
    :raises Invalid: a field is wrong (named), e.g. hours not in (0, 24], or a cancelled project.
    """
    if not policy.may_log_time_for(principal, data.employee_id):
        raise Forbidden("Employees log their own time; an API client needs the time:write scope.", "employee_id")
    work, values = _validated(session, principal, data, now or clock.now())
    employee = session.get(Employee, principal.employee_id or data.employee_id)
    if employee is None or employee.employment_status != "active":
        raise Invalid("No active employee has this id.", "employee_id")
    entry = TimeEntry(employee_id=employee.employee_id, customer_id=work.customer_id, ticket_id=data.ticket_id,
                      project_id=data.project_id, approval_status=ApprovalStatus.PENDING,
                      billing_rate=employee.hourly_rate_client, **values)
    session.add(entry)
    session.flush()
    events.emit(session, principal, "time_entry.logged", entry, _entry_payload(entry),
                changes={"hours_worked": (None, entry.hours_worked)})
    return entry


def _entry_payload(entry: TimeEntry) -> dict:
    return {"entry_id": entry.entry_id, "employee_id": entry.employee_id, "customer_id": entry.customer_id,
            "ticket_id": entry.ticket_id, "project_id": entry.project_id, "hours_worked": str(entry.hours_worked),
            "work_date": entry.work_date.isoformat()}


def ticket_time(session, ticket_id: int) -> tuple[Decimal, Decimal, list[TimeEntry]]:
    """(approved hours, pending hours, the entries) logged on a ticket, newest first."""
    entries = session.scalars(sa.select(TimeEntry).where(TimeEntry.ticket_id == ticket_id)
                              .order_by(TimeEntry.work_date.desc(), TimeEntry.entry_id.desc())
                              .options(sa.orm.joinedload(TimeEntry.employee))).all()
    approved = sum((e.hours_worked for e in entries if e.approval_status == ApprovalStatus.APPROVED), Decimal(0))
    pending = sum((e.hours_worked for e in entries if e.approval_status == ApprovalStatus.PENDING), Decimal(0))
    return approved, pending, list(entries)


# --- my week ---------------------------------------------------------------------------------

def monday_of(day: date) -> date:
    """The Monday of `day`'s week; days outside 1900-2999 give this week's (never an overflow)."""
    if not (EARLIEST_WEEK <= day <= LATEST_WEEK):
        day = clock.today()
    return day - timedelta(days=day.weekday())


@dataclass
class WeekRow:
    label: str
    number: str
    ticket_id: int | None
    project_id: int | None
    hours: list[Decimal]

    @property
    def total(self) -> Decimal:
        return sum(self.hours, Decimal(0))


@dataclass
class TimesheetWeek:
    monday: date
    days: list[date]
    rows: list[WeekRow]
    entries: list[TimeEntry]
    capacity: Decimal
    changeable: frozenset[int] = frozenset()  # the entries the principal may still correct or delete

    @property
    def day_totals(self) -> list[Decimal]:
        return [sum((row.hours[i] for row in self.rows), Decimal(0)) for i in range(7)]

    @property
    def total(self) -> Decimal:
        return sum(self.day_totals, Decimal(0))

    @property
    def utilisation(self) -> int:
        return int(self.total / self.capacity * 100) if self.capacity else 0


def timesheet_week(session, principal: policy.Principal, monday: date) -> TimesheetWeek:
    """The principal's week, Monday to Sunday: a row per ticket or project, totals, capacity (two queries).

    :raises Forbidden: only employees keep timesheets.
    """
    if not principal.is_employee:
        raise Forbidden("Only employees keep timesheets.")
    monday = monday_of(monday)
    days = [monday + timedelta(days=i) for i in range(7)]
    entries = session.scalars(
        sa.select(TimeEntry).where(TimeEntry.employee_id == principal.employee_id,
                                   TimeEntry.work_date.between(days[0], days[-1]))
        .options(sa.orm.joinedload(TimeEntry.ticket), sa.orm.joinedload(TimeEntry.project),
                 sa.orm.joinedload(TimeEntry.rejected_by))
        .order_by(TimeEntry.work_date, TimeEntry.entry_id)).unique().all()
    capacity = session.scalar(sa.select(Employee.capacity_hours_weekly)
                              .where(Employee.employee_id == principal.employee_id))
    rows: dict[tuple, WeekRow] = {}
    for entry in entries:
        key = (entry.ticket_id, entry.project_id)
        if key not in rows:
            label = entry.ticket.title if entry.ticket else entry.project.project_name
            number = entry.ticket.ticket_number if entry.ticket else entry.project.project_number
            rows[key] = WeekRow(label, number, entry.ticket_id, entry.project_id, [Decimal(0)] * 7)
        rows[key].hours[(entry.work_date - monday).days] += entry.hours_worked
    return TimesheetWeek(monday, days, list(rows.values()), list(entries), capacity or Decimal(40),
                         frozenset(e.entry_id for e in entries if policy.may_change_time_entry(principal, e)))


def _own_open_entry(session, principal: policy.Principal, entry_id: int) -> TimeEntry:
    entry = session.scalar(sa.select(TimeEntry).where(TimeEntry.entry_id == entry_id).with_for_update())
    if entry is None or entry.employee_id != principal.employee_id:
        raise NotFound("No such time entry.")
    if entry.approval_status == ApprovalStatus.APPROVED:
        raise Invalid("Approved time cannot be changed; ask your approver if it is wrong.", "entry_id")
    return entry


def update_entry(session, principal: policy.Principal, entry_id: int, data: NewTimeEntry, *,
                 now: datetime | None = None) -> TimeEntry:
    """Correct one's own pending or rejected entry; a rejected one goes back for approval.

    The work (ticket or project) cannot change here: delete the entry and log it again.
    :raises NotFound: not one's own entry.
    :raises Invalid: the entry is approved, or a field is wrong.
    """
    entry = _own_open_entry(session, principal, entry_id)
    _, checked = _validated(session, principal, dataclasses.replace(
        data, ticket_id=entry.ticket_id, project_id=entry.project_id), now or clock.now())
    before = {"hours_worked": entry.hours_worked, "approval_status": entry.approval_status}
    for column in ("work_date", "start_time", "end_time", "hours_worked", "description", "work_category",
                   "is_billable"):
        setattr(entry, column, checked[column])
    entry.approval_status = ApprovalStatus.PENDING
    entry.rejection_reason = None
    entry.rejected_at = None
    entry.rejected_by_employee_id = None
    session.flush()
    events.emit(session, principal, "time_entry.corrected", entry, _entry_payload(entry),
                changes={"hours_worked": (before["hours_worked"], entry.hours_worked),
                         "approval_status": (before["approval_status"], entry.approval_status)})
    return entry


def delete_entry(session, principal: policy.Principal, entry_id: int) -> None:
    """Delete one's own pending or rejected entry.

    :raises NotFound: not one's own entry.
    :raises Invalid: the entry is approved.
    """
    entry = _own_open_entry(session, principal, entry_id)
    events.emit(session, principal, "time_entry.deleted", entry, _entry_payload(entry),
                changes={"hours_worked": (entry.hours_worked, None)})
    session.delete(entry)
    session.flush()


# --- approvals -------------------------------------------------------------------------------

@dataclass(frozen=True)
class ApprovalFilters:
    employee_id: int | None = None
    customer_id: int | None = None
    week: date | None = None


def _approvable(principal: policy.Principal):
    """The SQL form of policy.may_approve_time_entry: never one's own; seniors support time,
    project managers their projects' time, admins all."""
    own = TimeEntry.employee_id != principal.employee_id
    if principal.role == "admin":
        return own
    if principal.role == "senior_technician":
        return sa.and_(own, TimeEntry.ticket_id.is_not(None))
    if principal.role == "project_manager":
        return sa.and_(own, TimeEntry.project_id.in_(
            sa.select(Project.project_id).where(Project.project_manager_id == principal.employee_id)))
    return sa.false()


def _approvable_totals(principal: policy.Principal):
    """_approvable in the words of pending_time_totals (a row per author and project, SUPPORT_WORK for
    time on tickets); tests/services/test_pending_totals.py holds the two to the same entries."""
    own = PendingTimeTotal.employee_id != principal.employee_id
    if principal.role == "admin":
        return own
    if principal.role == "senior_technician":
        return sa.and_(own, PendingTimeTotal.project_id == SUPPORT_WORK)
    if principal.role == "project_manager":
        return sa.and_(own, PendingTimeTotal.project_id.in_(
            sa.select(Project.project_id).where(Project.project_manager_id == principal.employee_id)))
    return sa.false()


APPROVALS_PER_PAGE = 50
APPROVALS_MAX_PAGES = 200  # the oldest 10,000; past that, the filters narrow the list


@dataclass
class ApprovalPage:
    entries: list  # this page's rows, oldest first (entry_id, work_date, hours_worked, billing_rate, description,
    # is_billable, ticket_id, employee_name, company_name, ticket_number or project_number)
    count: int  # every pending entry the filters leave, not only this page's
    hours: Decimal
    value: Decimal  # at billing rates
    page: int
    pages: int  # at most APPROVALS_MAX_PAGES
    more_than_pages: bool  # more entries wait than the pages reach


def pending_approvals(session, principal: policy.Principal, filters: ApprovalFilters, *, page: int = 1,
                      per_page: int = APPROVALS_PER_PAGE) -> ApprovalPage:
    """A page of the pending entries this person may approve, oldest first, with the count and totals of
    all of them; two queries."""
    where = [TimeEntry.approval_status == ApprovalStatus.PENDING, _approvable(principal)]
    if filters.employee_id:
        where.append(TimeEntry.employee_id == filters.employee_id)
    if filters.customer_id:
        where.append(TimeEntry.customer_id == filters.customer_id)
    if filters.week:
        monday = monday_of(filters.week)  # clamped: never overflows
        where.append(TimeEntry.work_date.between(monday, monday + timedelta(days=6)))
    if filters == ApprovalFilters():  # everything this person may decide: from the kept totals
        count, hours, value = session.execute(sa.select(
            sa.func.coalesce(sa.func.sum(PendingTimeTotal.entries), 0),
            sa.func.coalesce(sa.func.sum(PendingTimeTotal.hours), 0),
            sa.func.coalesce(sa.func.sum(PendingTimeTotal.value), 0)).where(_approvable_totals(principal))).one()
    else:  # a narrower list: its own entries summed (by employee, customer or week, far fewer)
        count, hours, value = session.execute(sa.select(
            sa.func.count(), sa.func.coalesce(sa.func.sum(TimeEntry.hours_worked), 0),
            sa.func.coalesce(sa.func.sum(TimeEntry.hours_worked * TimeEntry.billing_rate), 0)).where(*where)).one()
    pages = max(1, -(-count // per_page))
    page = max(1, min(page, pages, APPROVALS_MAX_PAGES))
    # The columns the list shows, as plain rows (loading 50 entries with their employee, customer, ticket
    # or project as ORM objects was a third of the page's time on the large data set).
    entries = session.execute(
        sa.select(TimeEntry.entry_id, TimeEntry.work_date, TimeEntry.hours_worked, TimeEntry.billing_rate,
                  TimeEntry.description, TimeEntry.is_billable, TimeEntry.ticket_id,
                  (Employee.first_name + " " + Employee.last_name).label("employee_name"),
                  Customer.company_name, SupportTicket.ticket_number, Project.project_number)
        .join(Employee, Employee.employee_id == TimeEntry.employee_id)
        .join(Customer, Customer.customer_id == TimeEntry.customer_id)
        .outerjoin(SupportTicket, SupportTicket.ticket_id == TimeEntry.ticket_id)
        .outerjoin(Project, Project.project_id == TimeEntry.project_id)
        .where(*where)
        .order_by(TimeEntry.work_date, TimeEntry.employee_id, TimeEntry.entry_id)
        .limit(per_page).offset((page - 1) * per_page)).all()
    return ApprovalPage(entries, count, Decimal(hours), Decimal(value), page, min(pages, APPROVALS_MAX_PAGES),
                        pages > APPROVALS_MAX_PAGES)


def approver_principal(session, principal: policy.Principal, approver_id: int | None) -> policy.Principal:
    """Who decides: the person signed in, or the active employee an API client (time:approve) names.

    :raises Forbidden: a client without time:approve, or a person naming someone else.
    :raises Invalid: a client names no employee, or no active employee has that id.
    """
    if not principal.is_client:
        if approver_id not in (None, principal.employee_id):
            raise Forbidden("You approve in your own name only.", "approved_by_employee_id")
        return principal
    if not policy.has_scope(principal, "time:approve"):
        raise Forbidden("This client may not approve time (it needs the time:approve scope).")
    if approver_id is None:
        raise Invalid("Name the employee who approves (approved_by_employee_id).", "approved_by_employee_id")
    employee = session.get(Employee, approver_id)
    if employee is None or employee.employment_status != "active":
        raise Invalid("No active employee has this id.", "approved_by_employee_id")
    return policy.Principal(account_id=None, email=employee.email, name=employee.full_name,
                            employee_id=employee.employee_id, role=employee.role)


def decide(session, principal: policy.Principal, entry_ids: list[int], *, approve: bool, reason: str = "",
           now: datetime | None = None, approver_id: int | None = None) -> int:
    """Approve or reject pending entries in one transaction; returns how many.

    All or nothing: if any chosen entry may not be decided by this person, none is. An API client
    decides in the name of the employee `approver_id`, judged by that employee's rights (and the
    audit log names the client); every refused entry is listed in the error with its reason.
    :raises Invalid: nothing chosen, or a rejection without a reason.
    :raises Forbidden: an entry is one's own, or outside what this role approves.
    :raises Conflict: an entry was decided meanwhile (no longer pending).
    """
    approver = approver_principal(session, principal, approver_id)
    ids = sorted(set(entry_ids))
    if not ids:
        raise Invalid("Choose at least one time entry.", "entry_ids")
    if len(ids) > MAX_DECISIONS:
        raise Invalid(f"Choose at most {MAX_DECISIONS} entries at once.", "entry_ids")
    now = now or clock.now()
    reason = (reason or "").strip()
    if not approve and not reason:
        raise Invalid("Say why the time is rejected, so its author can correct it.", "rejection_reason")
    rows = session.execute(
        sa.select(TimeEntry.entry_id, TimeEntry.employee_id, TimeEntry.ticket_id, TimeEntry.project_id,
                  TimeEntry.approval_status, Project.project_manager_id)
        .outerjoin(Project, Project.project_id == TimeEntry.project_id)
        .where(TimeEntry.entry_id.in_(ids)).order_by(TimeEntry.entry_id).with_for_update(of=TimeEntry)).all()
    found = {row.entry_id for row in rows}
    refused = {f"entry_ids.{entry_id}": "No such time entry." for entry_id in ids if entry_id not in found}
    if refused:
        raise NotFound("Some of these time entries no longer exist. Reload the page.", errors=refused)
    forbidden, decided = {}, {}
    for row in rows:
        if not policy.may_approve_time_entry(approver, row, project_manager_id=row.project_manager_id):
            forbidden[f"entry_ids.{row.entry_id}"] = (
                f"{approver.name} logged this entry and may not decide it." if row.employee_id == approver.employee_id
                else f"{approver.name}'s role does not decide this entry "
                     f"({'support' if row.ticket_id else 'project'} time).")
        elif row.approval_status != ApprovalStatus.PENDING:
            decided[f"entry_ids.{row.entry_id}"] = f"Already {ApprovalStatus(row.approval_status).value}."
    if forbidden:
        raise Forbidden("You may not decide some of these entries (your own, or outside what your role "
                        "approves). Nothing was changed.", errors={**forbidden, **decided})
    if decided:
        raise Conflict("Some of these entries were decided meanwhile. Reload the page; nothing was changed.",
                       errors=decided)
    values = ({"approval_status": ApprovalStatus.APPROVED, "approved_by_employee_id": approver.employee_id,
               "approved_at": now} if approve else
              {"approval_status": ApprovalStatus.REJECTED, "rejected_by_employee_id": approver.employee_id,
               "rejected_at": now, "rejection_reason": reason[:2000]})
    changed = session.execute(
        sa.update(TimeEntry).where(TimeEntry.entry_id.in_(ids)).values(**values)
        .returning(TimeEntry.entry_id, TimeEntry.employee_id, TimeEntry.customer_id, TimeEntry.ticket_id,
                   TimeEntry.project_id, TimeEntry.hours_worked, TimeEntry.work_date)
        .execution_options(synchronize_session=False)).all()
    by_id = {row.entry_id: row for row in changed}
    # One audit row per entry and, for approvals, the webhook payload of each (from the UPDATE's
    # RETURNING: no query per entry), all written in a few statements.
    events.emit_many(session, principal, "time_entry.approved" if approve else "time_entry.rejected",
                     "time_entries", ids,
                     changes={"approval_status": (ApprovalStatus.PENDING, values["approval_status"])},
                     data={entry_id: {**_entry_payload(by_id[entry_id]),
                                      "approved_by_employee_id": approver.employee_id} for entry_id in ids}
                     if approve else None)
    session.expire_all()
    return len(ids)
