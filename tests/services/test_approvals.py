"""The week grid, correcting and deleting one's own time, and approving or rejecting others' time."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal as D

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from portal.models import Account, ApprovalStatus, AuditEvent, Project, SupportTicket, TimeEntry
from portal.services import auth
from portal.services.errors import Conflict, Forbidden, Invalid, NotFound
from portal.services.timesheets import (
    ApprovalFilters,
    decide,
    delete_entry,
    log_time,
    pending_approvals,
    timesheet_week,
    update_entry,
)
from tests import commands
from tests import factories as f

NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)  # a Wednesday
MONDAY = date(2026, 11, 23)


def principal(session, person):
    account = session.scalar(sa.select(Account).where(Account.email == person.email))
    return auth.principal_for(session, account.account_id)


def entry_for(session, employee, **kw):
    values = dict(work_date=MONDAY, hours_worked=D("2.00"), billing_rate=D("100.00"))
    values.update(kw)
    return f.make_time_entry(session, employee=employee, **values)


def test_week_grid_rows_days_totals_and_capacity(session):
    tech = f.make_staff(session, capacity_hours_weekly=D("32.0"))
    me = principal(session, tech)
    ticket = f.make_ticket(session, title="Printer")
    project = f.make_project(session, project_name="Migration")
    for day, hours in ((0, "1.50"), (0, "0.50"), (2, "3.00")):
        log_time(session, me, commands.time_entry(work_date=date(2026, 11, 23 + day).isoformat(), hours=hours,
                                           description="work", ticket_id=ticket.ticket_id), now=NOW)
    log_time(session, me, commands.time_entry(work_date="2026-11-24", hours="4", description="x", work_category="project",
                                       project_id=project.project_id), now=NOW)
    log_time(session, me, commands.time_entry(work_date="2026-11-16", hours="8", description="last week",
                                       ticket_id=ticket.ticket_id), now=NOW)
    week = timesheet_week(session, me, date(2026, 11, 26))
    assert week.monday == MONDAY and len(week.days) == 7
    rows = {row.label: row.hours for row in week.rows}
    assert rows["Printer"][:3] == [D("2.00"), D(0), D("3.00")]
    assert rows["Migration"][1] == D("4")
    assert week.total == D("9.00") and week.capacity == D("32.0") and week.utilisation == 28


def test_rejected_entry_shows_its_reason_is_corrected_and_goes_back_pending(session):
    tech = f.make_staff(session)
    senior = f.make_staff(session, role="senior_technician")
    entry = entry_for(session, tech)
    decide(session, principal(session, senior), [entry.entry_id], approve=False, reason="Wrong ticket", now=NOW)
    session.refresh(entry)
    assert entry.approval_status == "rejected" and entry.rejection_reason == "Wrong ticket"
    assert entry.rejected_by_employee_id == senior.employee_id
    update_entry(session, principal(session, tech), entry.entry_id,
                 commands.time_entry(work_date=MONDAY.isoformat(), hours="1.25", description="Right ticket now"), now=NOW)
    session.refresh(entry)
    assert entry.approval_status == "pending" and entry.rejection_reason is None and entry.hours_worked == D("1.25")


def test_only_the_author_changes_and_never_approved_time(session):
    tech, other = f.make_staff(session), f.make_staff(session)
    entry = entry_for(session, tech)
    data = commands.time_entry(work_date=MONDAY.isoformat(), hours="1", description="x")
    with pytest.raises(NotFound):
        update_entry(session, principal(session, other), entry.entry_id, data, now=NOW)
    with pytest.raises(NotFound):
        delete_entry(session, principal(session, other), entry.entry_id)
    entry.approval_status = "approved"
    entry.approved_by_employee_id = other.employee_id
    entry.approved_at = NOW
    session.flush()
    with pytest.raises(Invalid, match="Approved time cannot be changed"):
        update_entry(session, principal(session, tech), entry.entry_id, data, now=NOW)
    with pytest.raises(Invalid):
        delete_entry(session, principal(session, tech), entry.entry_id)


def test_delete_own_pending_entry(session):
    tech = f.make_staff(session)
    entry = entry_for(session, tech)
    delete_entry(session, principal(session, tech), entry.entry_id)
    assert session.get(TimeEntry, entry.entry_id) is None


@pytest.mark.parametrize("role, on, allowed", [
    ("senior_technician", "ticket", True), ("senior_technician", "project", False),
    ("project_manager", "own_project", True), ("project_manager", "other_project", False),
    ("project_manager", "ticket", False), ("admin", "ticket", True), ("admin", "project", True),
    ("technician", "ticket", False), ("account_manager", "ticket", False),
])
def test_who_approves_what(session, role, on, allowed):
    approver = f.make_staff(session, role=role)
    author = f.make_staff(session)
    if on == "ticket":
        entry = entry_for(session, author)
    else:
        manager = approver.employee_id if on == "own_project" else f.make_employee(session).employee_id
        entry = entry_for(session, author, project=f.make_project(session, project_manager_id=manager),
                          work_category="project")
    me = principal(session, approver)
    visible = [e.entry_id for e in pending_approvals(session, me, ApprovalFilters()).entries]
    assert (entry.entry_id in visible) is allowed
    if allowed:
        assert decide(session, me, [entry.entry_id], approve=True, now=NOW) == 1
    else:
        with pytest.raises(Forbidden):
            decide(session, me, [entry.entry_id], approve=True, now=NOW)


def test_nobody_approves_their_own_time(session):
    admin = f.make_staff(session, role="admin")
    own = entry_for(session, admin)
    me = principal(session, admin)
    assert own.entry_id not in [e.entry_id for e in pending_approvals(session, me, ApprovalFilters()).entries]
    with pytest.raises(Forbidden):
        decide(session, me, [own.entry_id], approve=True, now=NOW)


def test_rejection_needs_a_reason_and_decisions_are_all_or_nothing(session):
    senior = f.make_staff(session, role="senior_technician")
    author = f.make_staff(session)
    ok = entry_for(session, author)
    project_entry = entry_for(session, author, project=f.make_project(session), work_category="project")
    me = principal(session, senior)
    with pytest.raises(Invalid) as caught:
        decide(session, me, [ok.entry_id], approve=False, reason="  ", now=NOW)
    assert caught.value.field == "rejection_reason"
    with pytest.raises(Forbidden):
        decide(session, me, [ok.entry_id, project_entry.entry_id], approve=True, now=NOW)
    session.refresh(ok)
    assert ok.approval_status == "pending"
    decide(session, me, [ok.entry_id], approve=True, now=NOW)
    with pytest.raises(Conflict):
        decide(session, me, [ok.entry_id], approve=True, now=NOW)


def test_approved_hours_feed_the_ticket_and_the_project_cost(session):
    admin = f.make_staff(session, role="admin")
    author = f.make_staff(session)
    ticket = f.make_ticket(session)
    project = f.make_project(session)
    entries = [entry_for(session, author, ticket=ticket, hours_worked=D("1.50")),
               entry_for(session, author, project=project, hours_worked=D("2.25"), billing_rate=D("150.00"),
                         work_category="project")]
    decide(session, principal(session, admin), [e.entry_id for e in entries], approve=True, now=NOW)
    assert session.get(SupportTicket, ticket.ticket_id).actual_hours == D("1.50")
    assert session.get(Project, project.project_id).actual_cost == D("337.50")


def test_filters_by_employee_customer_and_week(session):
    admin = f.make_staff(session, role="admin")
    a, b = f.make_staff(session), f.make_staff(session)
    customer = f.make_customer(session)
    first = entry_for(session, a, ticket=f.make_ticket(session, customer=customer))
    entry_for(session, b)
    entry_for(session, a, work_date=date(2026, 11, 10))
    me = principal(session, admin)
    assert [e.entry_id for e in pending_approvals(session, me, ApprovalFilters(
        employee_id=a.employee_id, customer_id=customer.customer_id, week=date(2026, 11, 25))).entries] == [first.entry_id]



def test_approvals_come_in_pages_with_totals_of_every_pending_entry(session):
    """A page of the oldest pending entries; the count, hours and value are of all of them, not the page's."""
    admin = f.make_staff(session, role="admin")
    author = f.make_staff(session)
    made = [entry_for(session, author, work_date=date(2026, 11, 1 + n % 20), hours_worked=D("1.50"),
                      billing_rate=D("80.00")) for n in range(7)]
    me = principal(session, admin)
    first = pending_approvals(session, me, ApprovalFilters(), per_page=3)
    assert (first.count, first.hours, first.value, first.page, first.pages) == (7, D("10.50"), D("840.00"), 1, 3)
    last = pending_approvals(session, me, ApprovalFilters(), page=99, per_page=3)
    assert last.page == 3 and [e.entry_id for e in last.entries] == [made[6].entry_id]
    seen = [e.entry_id for page in (1, 2, 3)
            for e in pending_approvals(session, me, ApprovalFilters(), page=page, per_page=3).entries]
    assert sorted(seen) == sorted(e.entry_id for e in made) and not first.more_than_pages
    none = pending_approvals(session, me, ApprovalFilters(employee_id=admin.employee_id))
    assert (none.entries, none.count, none.hours, none.page, none.pages) == ([], 0, D(0), 1, 1)


def test_approving_500_entries_is_one_transaction_of_a_few_statements(session):
    admin = f.make_staff(session, role="admin")
    author = f.make_staff(session)
    ticket = f.make_ticket(session)
    session.execute(sa.insert(TimeEntry), [
        {"employee_id": author.employee_id, "customer_id": ticket.customer_id, "ticket_id": ticket.ticket_id,
         "work_date": MONDAY, "hours_worked": D("0.25"), "description": f"entry {n}", "work_category": "support",
         "billing_rate": D("100.00")} for n in range(500)])
    ids = session.scalars(sa.select(TimeEntry.entry_id).where(TimeEntry.ticket_id == ticket.ticket_id)).all()
    me = principal(session, admin)
    statements = []
    engine = session.get_bind().engine
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(engine, "before_cursor_execute", listener)
    try:
        assert decide(session, me, ids, approve=True, now=NOW) == 500
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    # lock and read, one UPDATE, the audit rows' ids and one multi-row audit INSERT (the per-row
    # trigger works inside PostgreSQL), which webhook subscriptions want the approvals (and, when
    # some do, one INSERT of all their delivery jobs)
    assert len(statements) <= 6
    assert session.get(SupportTicket, ticket.ticket_id).actual_hours == D("125.00")
    assert session.scalar(sa.select(sa.func.count()).select_from(AuditEvent).where(
        AuditEvent.action == "time_entry.approved")) == 500
    assert session.scalar(sa.select(sa.func.count()).select_from(TimeEntry).where(
        TimeEntry.approval_status == ApprovalStatus.APPROVED, TimeEntry.ticket_id == ticket.ticket_id)) == 500
