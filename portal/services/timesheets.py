"""Time entries: logged against one ticket or one project, pending until someone else approves them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation

import sqlalchemy as sa

from portal.models import ApprovalStatus, Employee, Project, ProjectStatus, SupportTicket, TimeEntry, WorkCategory
from portal.services import audit, policy
from portal.services.errors import Forbidden, Invalid, NotFound

MAX_HOURS = Decimal("24")


@dataclass(frozen=True)
class NewTimeEntry:
    work_date: str
    hours: str = ""
    start_time: str = ""
    end_time: str = ""
    work_category: str = "support"
    is_billable: bool = True
    description: str = ""
    ticket_id: int | None = None
    project_id: int | None = None


def _parse_date(raw: str, today: date) -> date:
    try:
        day = date.fromisoformat((raw or "").strip())
    except ValueError:
        raise Invalid("Enter the date as YYYY-MM-DD.", "work_date") from None
    if day > today + timedelta(days=1):
        raise Invalid("Time cannot be logged for a future day.", "work_date")
    if day < today - timedelta(days=366):
        raise Invalid("That date is more than a year ago.", "work_date")
    return day


def _parse_time(raw: str, field: str) -> time | None:
    raw = (raw or "").strip()
    if not raw:
        return None
    try:
        return time.fromisoformat(raw)
    except ValueError:
        raise Invalid("Enter the time as HH:MM.", field) from None


def hours_between(start: time, end: time) -> Decimal:
    """Hours from start to end on one day, to the minute. :raises Invalid: end is not after start."""
    minutes = (end.hour * 60 + end.minute) - (start.hour * 60 + start.minute)
    if minutes <= 0:
        raise Invalid("The end time must be after the start time.", "end_time")
    return (Decimal(minutes) / 60).quantize(Decimal("0.01"))


def log_time(session, principal: policy.Principal, data: NewTimeEntry, *, now: datetime,
             ip: str | None = None) -> TimeEntry:
    """Log the principal's own time, pending approval. The customer comes from the ticket or project.

    Hours come from start and end when both are given. The billing rate is the employee's client rate.
    :raises Forbidden: only employees log time.
    :raises NotFound: no such ticket or project.
    :raises Invalid: a field is wrong (named), e.g. hours not in (0, 24], or a cancelled project.
    """
    if not principal.is_employee:
        raise Forbidden("Only employees log time.")
    if (data.ticket_id is None) == (data.project_id is None):
        raise Invalid("Log time against one ticket or one project.", "ticket_id")
    if data.ticket_id is not None:
        work = session.get(SupportTicket, data.ticket_id)
        if work is None:
            raise NotFound("No such ticket.", "ticket_id")
    else:
        work = session.get(Project, data.project_id)
        if work is None:
            raise NotFound("No such project.", "project_id")
        if work.project_status in (ProjectStatus.CANCELLED, ProjectStatus.COMPLETED):
            raise Invalid(f"The project is {ProjectStatus(work.project_status).value}; it takes no more time.",
                          "project_id")
    day = _parse_date(data.work_date, now.date())
    start, end = _parse_time(data.start_time, "start_time"), _parse_time(data.end_time, "end_time")
    if start and end:
        hours = hours_between(start, end)
    else:
        try:
            hours = Decimal((data.hours or "").strip().replace(",", "."))
        except InvalidOperation:
            raise Invalid("Enter the hours, like 1.5, or a start and an end time.", "hours") from None
    if not hours.is_finite() or not (Decimal(0) < hours <= MAX_HOURS):
        raise Invalid("Hours must be more than 0 and at most 24.", "hours")
    if hours != hours.quantize(Decimal("0.01")):
        raise Invalid("Use at most two decimals for hours (1.25, not 1.255).", "hours")
    try:
        category = WorkCategory(data.work_category)
    except ValueError:
        raise Invalid("Choose a category from the list.", "work_category") from None
    description = (data.description or "").strip()
    if not description:
        raise Invalid("Say what you did.", "description")
    employee = session.get(Employee, principal.employee_id)
    entry = TimeEntry(
        employee_id=employee.employee_id, customer_id=work.customer_id,
        ticket_id=data.ticket_id, project_id=data.project_id, work_date=day,
        start_time=start if start and end else None, end_time=end if start and end else None,
        hours_worked=hours, description=description[:5000], work_category=category,
        is_billable=bool(data.is_billable), approval_status=ApprovalStatus.PENDING,
        billing_rate=employee.hourly_rate_client,
    )
    session.add(entry)
    session.flush()
    audit.record(session, principal.actor(ip), "time.logged", table="time_entries", row_id=entry.entry_id,
                 changes={"hours_worked": (None, hours)})
    return entry


def ticket_time(session, ticket_id: int) -> tuple[Decimal, Decimal, list[TimeEntry]]:
    """(approved hours, pending hours, the entries) logged on a ticket, newest first."""
    entries = session.scalars(sa.select(TimeEntry).where(TimeEntry.ticket_id == ticket_id)
                              .order_by(TimeEntry.work_date.desc(), TimeEntry.entry_id.desc())
                              .options(sa.orm.joinedload(TimeEntry.employee))).all()
    approved = sum((e.hours_worked for e in entries if e.approval_status == ApprovalStatus.APPROVED), Decimal(0))
    pending = sum((e.hours_worked for e in entries if e.approval_status == ApprovalStatus.PENDING), Decimal(0))
    return approved, pending, list(entries)
