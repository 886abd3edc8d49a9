"""Employees (services/employees.py): the seed's rules with their messages, hiring and changes audited
with old and new values, rates that apply from then on, leaving (sessions ended, sign-in refused,
history kept), the hand-over of open work, and the last active admin held even under a race."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal as D

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy import orm

from portal.models import (
    Account,
    AuditEvent,
    AuthToken,
    Employee,
    LoginSession,
    Project,
    SupportTicket,
    TimeEntry,
)
from portal.services import auth, clock, employees, timesheets
from portal.services.employees import EmployeeDetails
from portal.services.errors import Conflict, Forbidden, Invalid
from portal.services.timesheets import ApprovalFilters, NewTimeEntry, pending_approvals
from tests import factories as f

TODAY = clock.today()


def _principal(session, person):
    account_id = session.scalar(sa.select(Account.account_id).where(Account.employee_id == person.employee_id))
    return auth.principal_for(session, account_id)


@pytest.fixture
def admin(session):
    return _principal(session, f.make_staff(session, role="admin", first_name="Priya", last_name="Admin"))


def _details(**kw) -> EmployeeDetails:
    n = f._n()
    values = dict(employee_number=f"N{n:05d}", first_name="Dana", last_name="Reyes", email=f"dana{n}@techserv.com",
                  phone="+1 303 555 0100", role="technician", department="Service desk",
                  hire_date=TODAY - timedelta(days=10), hourly_rate_internal=D("50.00"),
                  hourly_rate_client=D("95.00"), capacity_hours_weekly=D("40"))
    values.update(kw)
    return EmployeeDetails(**values)


def _events(session, action, row_id):
    return session.scalars(sa.select(AuditEvent).where(AuditEvent.action == action, AuditEvent.table_name == "employees",
                                                       AuditEvent.row_id == row_id)
                           .order_by(AuditEvent.event_id)).all()


# --- the rules, each with its message ------------------------------------------------------

LATEST = TODAY + timedelta(days=90)
RULES = [
    ("employee_number", {"employee_number": ""}, "Enter the employee number, like EMP006."),
    ("employee_number", {"employee_number": "EMP 6!"}, "Use up to 10 letters, digits and dashes, like EMP006."),
    ("employee_number", {"employee_number": "EMP0000000001"}, "Use up to 10 letters, digits and dashes, like EMP006."),
    ("first_name", {"first_name": "  "}, "Enter the first name."),
    ("last_name", {"last_name": "x" * 101}, "The last name can be at most 100 characters."),
    ("email", {"email": ""}, "Enter their email address; it is also their sign-in."),
    ("email", {"email": "dana@techserv"}, "Enter a valid email address, like dana.reyes@techserv.com."),
    ("email", {"email": "dana reyes@techserv.com"}, "Enter a valid email address, like dana.reyes@techserv.com."),
    ("phone", {"phone": "call me"}, "Enter the phone number in digits, for example +1 303 555 0100 x12."),
    ("phone", {"phone": "1" * 21}, "The phone number can be at most 20 characters."),
    ("role", {"role": None}, "Choose a role."),
    ("department", {"department": "d" * 101}, "The department can be at most 100 characters."),
    ("hire_date", {"hire_date": None}, "Enter the hire date, like 2026-03-02."),
    ("hire_date", {"hire_date": LATEST + timedelta(days=1)},
     f"The hire date can be at most 90 days ahead ({LATEST.day} {LATEST.strftime('%b %Y')} at the latest)."),
    ("hire_date", {"hire_date": date(1949, 12, 31)}, "Check the year of the hire date."),
    ("hourly_rate_client", {"hourly_rate_client": None}, "Enter the client rate in dollars an hour, like 95.00."),
    ("hourly_rate_client", {"hourly_rate_client": D("0")}, "The client rate must be more than $0."),
    ("hourly_rate_internal", {"hourly_rate_internal": D("-1")}, "The internal rate must be more than $0."),
    ("hourly_rate_client", {"hourly_rate_client": D("10000.01")},
     "The client rate can be at most $10,000.00 an hour."),
    ("hourly_rate_client", {"hourly_rate_client": D("99.505")},
     "Give the client rate in dollars and cents (at most two decimals)."),
    ("capacity_hours_weekly", {"capacity_hours_weekly": None}, "Enter the weekly capacity in hours, like 40."),
    ("capacity_hours_weekly", {"capacity_hours_weekly": D("0")},
     "The weekly capacity must be more than 0 and at most 60 hours."),
    ("capacity_hours_weekly", {"capacity_hours_weekly": D("60.5")},
     "The weekly capacity must be more than 0 and at most 60 hours."),
    ("capacity_hours_weekly", {"capacity_hours_weekly": D("37.55")},
     "Give the weekly capacity to a tenth of an hour at most, like 37.5."),
    ("termination_date", {"termination_date": TODAY},
     "Only a terminated employee has a termination date: clear it, or choose Terminated."),
    ("termination_date", {"employment_status": "terminated", "hire_date": TODAY - timedelta(days=5),
                          "termination_date": TODAY - timedelta(days=6)},
     "The termination date cannot be before the hire date."),
]


@pytest.mark.parametrize("field, change, message", RULES, ids=[f"{r[0]}-{i}" for i, r in enumerate(RULES)])
def test_each_rule_says_what_is_wrong_beside_its_field(session, admin, field, change, message):
    with pytest.raises(Invalid) as caught:
        employees.create_employee(session, admin, _details(**change))
    assert caught.value.errors == {field: message}
    assert caught.value.field == field and caught.value.message == message
    assert employees.employee_errors(session, admin, _details(**change)) == {field: message}


def test_number_and_email_are_unique_in_any_case(session, admin):
    taken = employees.create_employee(session, admin, _details(employee_number="EMP077", email="Sam.Ortiz@techserv.com"))
    with pytest.raises(Invalid) as caught:
        employees.create_employee(session, admin, _details(employee_number="emp077", email="sam.ortiz@TECHSERV.com"))
    assert caught.value.errors == {"employee_number": "Another employee already has the number EMP077.",
                                   "email": "Another employee already uses this email address."}
    assert caught.value.message == "Check the 2 fields marked below."
    # Their own number and email are theirs to keep when something else changes.
    employees.update_employee(session, admin, taken.employee_id, replace(EmployeeDetails.of(taken), department="NOC"))


def test_an_email_a_customer_contact_signs_in_with_is_refused(session, admin):
    contact = f.make_contact_login(session)
    with pytest.raises(Invalid) as caught:
        employees.create_employee(session, admin, _details(email=contact.email.upper()))
    assert caught.value.errors == {"email": "Another login (a customer contact's) already uses this email address."}


def test_only_admins_add_or_change_employees(session):
    manager = _principal(session, f.make_staff(session, role="account_manager"))
    with pytest.raises(Forbidden):
        employees.create_employee(session, manager, _details())
    with pytest.raises(Forbidden):
        employees.update_employee(session, manager, f.make_employee(session).employee_id, _details())
    technician = _principal(session, f.make_staff(session))
    with pytest.raises(Forbidden):
        employees.employee_list(session, technician, employees.EmployeeFilters())
    assert employees.employee_list(session, manager, employees.EmployeeFilters()).total >= 1


# --- hiring and changing, audited -------------------------------------------------------------

def test_hiring_is_audited_with_every_value(session, admin):
    dana = employees.create_employee(session, admin, _details(employee_number="emp-42"))
    assert (dana.employee_number, dana.employment_status, dana.termination_date) == ("EMP-42", "active", None)
    [event] = _events(session, "employee.created", dana.employee_id)
    assert event.actor_id == admin.employee_id
    assert event.changes["hourly_rate_client"] == {"old": None, "new": "95.00"}
    assert event.changes["role"] == {"old": None, "new": "technician"}
    assert event.changes["employee_number"] == {"old": None, "new": "EMP-42"}


def test_a_change_is_audited_with_old_and_new_values(session, admin):
    dana = employees.create_employee(session, admin, _details())
    before = EmployeeDetails.of(dana)
    employees.update_employee(session, admin, dana.employee_id, replace(
        before, role="senior_technician", hourly_rate_client=D("110"), capacity_hours_weekly=D("32"),
        department=""))
    [event] = _events(session, "employee.updated", dana.employee_id)
    assert event.changes == {
        "role": {"old": "technician", "new": "senior_technician"},
        "department": {"old": "Service desk", "new": None},
        "hourly_rate_client": {"old": "95.00", "new": "110.00"},
        "capacity_hours_weekly": {"old": "40.0", "new": "32.0"},
    }
    # Saving what is there changes nothing and records nothing.
    employees.update_employee(session, admin, dana.employee_id, EmployeeDetails.of(dana))
    assert len(_events(session, "employee.updated", dana.employee_id)) == 1


def test_a_change_made_on_an_old_page_is_refused(session, admin):
    dana = employees.create_employee(session, admin, _details())
    seen = dana.updated_at - timedelta(seconds=5)
    with pytest.raises(Conflict, match="since you opened this page"):
        employees.update_employee(session, admin, dana.employee_id, EmployeeDetails.of(dana), expected_updated_at=seen)


def test_a_changed_email_is_also_the_new_sign_in(session, admin):
    dana_row = f.make_staff(session, email="dana.old@techserv.com")
    employees.update_employee(session, admin, dana_row.employee_id,
                              replace(EmployeeDetails.of(dana_row), email="dana.new@techserv.com"))
    assert session.scalar(sa.select(Account.email).where(Account.employee_id == dana_row.employee_id)) \
        == "dana.new@techserv.com"


def test_a_rate_change_applies_to_time_logged_from_then_on(session, admin):
    amanda_row = f.make_staff(session, hourly_rate_client=D("100.00"))
    amanda = _principal(session, amanda_row)
    ticket = f.make_ticket(session)
    entry = lambda: timesheets.log_time(session, amanda, NewTimeEntry(  # noqa: E731
        work_date=TODAY, hours=D("1.5"), description="Fixed it.", ticket_id=ticket.ticket_id))
    before = entry()
    employees.update_employee(session, admin, amanda_row.employee_id,
                              replace(EmployeeDetails.of(amanda_row), hourly_rate_client=D("120.00")))
    after = entry()
    session.expire_all()
    assert session.get(TimeEntry, before.entry_id).billing_rate == D("100.00")
    assert session.get(TimeEntry, after.entry_id).billing_rate == D("120.00")


# --- leaving -------------------------------------------------------------------------------

@pytest.mark.parametrize("status", ["inactive", "terminated"])
def test_leaving_ends_every_session_refuses_sign_in_and_keeps_history(session, admin, status):
    amanda_row = f.make_staff(session, first_name="Amanda", last_name="Lee")
    account = session.scalar(sa.select(Account).where(Account.employee_id == amanda_row.employee_id))
    tokens = [auth.start_login_session(session, account, ip=None, user_agent="phone"),
              auth.start_login_session(session, account, ip=None, user_agent="laptop")]
    auth.issue_link_token(session, account, "password_reset", secret_key="k", now=clock.now())
    ticket = f.make_ticket(session, assigned_employee_id=amanda_row.employee_id, status="in_progress")
    session.flush()
    assert all(auth.principal_for(session, account.account_id, login_session_token=t) for t in tokens)

    employees.update_employee(session, admin, amanda_row.employee_id,
                              replace(EmployeeDetails.of(amanda_row), employment_status=status))
    session.expire_all()
    assert session.scalar(sa.select(sa.func.count()).where(LoginSession.account_id == account.account_id,
                                                           LoginSession.revoked_at.is_(None))) == 0
    assert session.scalar(sa.select(sa.func.count()).where(AuthToken.account_id == account.account_id,
                                                           AuthToken.used_at.is_(None))) == 0
    assert all(auth.principal_for(session, account.account_id, login_session_token=t) is None for t in tokens)
    with pytest.raises(auth.SignInRefused, match="The email or password is wrong."):
        auth.authenticate(session, account.email, f.PASSWORD, ip=None, now=clock.now())
    [event] = _events(session, "employee.updated", amanda_row.employee_id)
    assert event.changes["employment_status"] == {"old": "active", "new": status}
    assert event.changes["open_sessions"] == {"old": 2, "new": 0}
    if status == "terminated":
        assert event.changes["termination_date"] == {"old": None, "new": TODAY.isoformat()}
    # Nothing of theirs is gone: the row, their login and their ticket stay.
    assert session.get(Employee, amanda_row.employee_id).employment_status == status
    assert session.get(SupportTicket, ticket.ticket_id).assigned_employee_id == amanda_row.employee_id

    # Back at work later: a new sign-in works, the sessions ended then stay ended.
    employees.update_employee(session, admin, amanda_row.employee_id, replace(
        EmployeeDetails.of(session.get(Employee, amanda_row.employee_id)), employment_status="active",
        termination_date=None))
    assert auth.authenticate(session, account.email, f.PASSWORD, ip=None, now=clock.now()).account == account
    assert all(auth.principal_for(session, account.account_id, login_session_token=t) is None for t in tokens)


# --- the last active admin -------------------------------------------------------------------

def _only_admin(session):
    """Make `admin` the only active admin of this test's data (others become account managers)."""
    session.execute(sa.update(Employee).where(Employee.role == "admin").values(role="account_manager"))
    priya = f.make_staff(session, role="admin", first_name="Priya", last_name="Natarajan")
    return priya, _principal(session, priya)


@pytest.mark.parametrize("change, field", [({"role": "account_manager"}, "role"),
                                           ({"employment_status": "inactive"}, "employment_status"),
                                           ({"employment_status": "terminated"}, "employment_status")])
def test_the_last_active_admin_can_be_neither_demoted_nor_deactivated(session, change, field):
    priya, me = _only_admin(session)
    with pytest.raises(Invalid) as caught:
        employees.update_employee(session, me, priya.employee_id, replace(EmployeeDetails.of(priya), **change))
    assert caught.value.errors == {field: "Priya Natarajan is the only active administrator. Make someone else an "
                                          "administrator first, so somebody can still manage the portal."}
    assert employees.employee_view(session, me, priya.employee_id).is_last_admin
    # With a second admin, either may step down; the other is then the last one.
    second = f.make_staff(session, role="admin")
    assert not employees.employee_view(session, me, priya.employee_id).is_last_admin
    employees.update_employee(session, me, priya.employee_id, replace(EmployeeDetails.of(priya), **change))
    assert employees.employee_view(session, _principal(session, second), second.employee_id).is_last_admin


def test_two_admins_demoting_each_other_at_once_leave_one_admin(pg, app):
    """Each demotes the other in its own transaction, at the same moment: the admins' rows are locked
    before they are counted, so the second waits for the first, then sees one admin left and is refused."""
    name = pg.create_database("techserv_last_admin")
    try:
        from tests.test_migrations import migrate_database

        migrate_database(pg, name)
        engine = sa.create_engine(pg.url_for(name))
        Session = orm.sessionmaker(engine)
        with Session.begin() as setup:
            a, b = (f.make_staff(setup, role="admin", first_name=first, last_name="Admin") for first in ("Ann", "Bob"))
            ids = (a.employee_id, b.employee_id)
        with Session() as s:
            me = {i: _principal(s, s.get(Employee, i)) for i in ids}
            details = {i: replace(EmployeeDetails.of(s.get(Employee, i)), role="account_manager") for i in ids}

        barrier = threading.Barrier(2)
        outcomes: dict[int, str] = {}
        first_locked = threading.Event()

        def demote(actor: int, target: int, hold: bool) -> None:
            with Session() as s:
                barrier.wait()
                if not hold:
                    first_locked.wait(10)  # the other transaction holds the admins' rows now
                try:
                    employees.update_employee(s, me[actor], target, details[target])
                    if hold:
                        first_locked.set()
                        time.sleep(1.0)  # still uncommitted: the other one must wait for this
                    s.commit()
                    outcomes[actor] = "demoted the other"
                except Invalid as error:
                    s.rollback()
                    outcomes[actor] = error.errors.get("role", error.message)

        threads = [threading.Thread(target=demote, args=(ids[0], ids[1], True)),
                   threading.Thread(target=demote, args=(ids[1], ids[0], False))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert outcomes[ids[0]] == "demoted the other"
        assert "is the only active administrator" in outcomes[ids[1]]
        with psycopg.connect(pg.libpq_url_for(name)) as conn:
            admins = conn.execute("SELECT first_name FROM employees WHERE role = 'admin' AND "
                                  "employment_status = 'active'").fetchall()
        assert admins == [("Ann",)]
        engine.dispose()
    finally:
        pg.drop_database(name)


# --- handing work over -----------------------------------------------------------------------

@pytest.fixture
def leaving(session, admin):
    """An admin who works tickets and manages projects, with everything a person leaves behind."""
    carol = f.make_staff(session, role="admin", first_name="Carol", last_name="Leaving")
    customer = f.make_customer(session)
    tickets = [f.make_ticket(session, customer=customer, assigned_employee_id=carol.employee_id, status=status,
                             assigned_at=datetime(2026, 6, 1, 9, 30, tzinfo=UTC),
                             resolved_at=datetime(2026, 6, 2, tzinfo=UTC) if status in ("resolved", "closed") else None,
                             closed_at=datetime(2026, 6, 9, tzinfo=UTC) if status == "closed" else None,
                             first_response_at=datetime(2026, 6, 1, 10, tzinfo=UTC))
               for status in ("assigned", "in_progress", "waiting_customer", "resolved", "closed")]
    projects = [f.make_project(session, customer=customer, project_manager_id=carol.employee_id, project_status=status)
                for status in ("planning", "active", "completed")]
    someone = f.make_employee(session)
    others_time = [f.make_time_entry(session, employee=someone, project=projects[1]) for _ in range(2)]
    own_time = f.make_time_entry(session, employee=carol, ticket=tickets[1])
    return carol, tickets, projects, others_time, own_time


def test_hand_over_moves_every_open_ticket_and_project_in_one_step(session, admin, leaving):
    carol, tickets, projects, others_time, own_time = leaving
    john = f.make_staff(session, role="senior_technician", first_name="John", last_name="Davis")
    carlos_row = f.make_staff(session, role="project_manager", first_name="Carlos", last_name="Martinez")
    carlos = _principal(session, carlos_row)
    assert not pending_approvals(session, carlos, ApprovalFilters()).entries

    done = employees.hand_over_work(session, admin, carol.employee_id, tickets_to=john.employee_id,
                                    projects_to=carlos_row.employee_id)
    assert (done.tickets, done.projects, done.approvals) == (4, 2, 2)
    session.expire_all()
    assignees = {t.ticket_number: session.get(SupportTicket, t.ticket_id).assigned_employee_id for t in tickets}
    assert list(assignees.values()) == [john.employee_id] * 4 + [carol.employee_id]  # the closed one stays as it was
    managers = [session.get(Project, p.project_id).project_manager_id for p in projects]
    assert managers == [carlos_row.employee_id, carlos_row.employee_id, carol.employee_id]
    # Pending time on the projects now waits for the new manager; Carol's own stays hers, still pending.
    assert {e.entry_id for e in pending_approvals(session, carlos, ApprovalFilters()).entries} \
        == {e.entry_id for e in others_time}
    own = session.get(TimeEntry, own_time.entry_id)
    assert (own.employee_id, own.approval_status) == (carol.employee_id, "pending")
    # Each move is on its own row's history, and the hand-over on Carol's.
    assert session.scalar(sa.select(sa.func.count()).where(
        AuditEvent.action == "ticket.assigned", AuditEvent.row_id.in_([t.ticket_id for t in tickets]))) == 4
    [event] = _events(session, "employee.work_handed_over", carol.employee_id)
    assert event.changes == {"assigned_tickets": {"old": 4, "new": 0},
                             "tickets_to_employee_id": {"old": None, "new": john.employee_id},
                             "managed_projects": {"old": 2, "new": 0},
                             "projects_to_employee_id": {"old": None, "new": carlos_row.employee_id}}
    assert not employees.open_work(session, carol.employee_id).to_hand_over


def test_hand_over_says_who_may_take_the_work(session, admin, leaving):
    carol, *_ = leaving
    gone = f.make_staff(session, role="senior_technician", employment_status="inactive")
    seller = f.make_staff(session, role="account_manager")
    cases = [
        (dict(tickets_to=None, projects_to=None), {"tickets_to": "Choose who takes the tickets.",
                                                   "projects_to": "Choose who takes the projects."}),
        (dict(tickets_to=carol.employee_id, projects_to=carol.employee_id),
         {"tickets_to": "Choose a colleague of Carol Leaving's to take the tickets.",
          "projects_to": "Choose a colleague of Carol Leaving's to take the projects."}),
        (dict(tickets_to=gone.employee_id, projects_to=seller.employee_id),
         {"tickets_to": "Choose an active technician, senior technician or admin to take the tickets.",
          "projects_to": "Choose an active project manager or admin to take the projects."}),
    ]
    for kwargs, errors in cases:
        with pytest.raises(Invalid) as caught:
            employees.hand_over_work(session, admin, carol.employee_id, **kwargs)
        assert caught.value.errors == errors


def test_nothing_to_hand_over_is_said_so(session, admin):
    idle = f.make_staff(session, first_name="Idle", last_name="Person")
    with pytest.raises(Invalid, match="Idle Person has no open tickets or projects to hand over."):
        employees.hand_over_work(session, admin, idle.employee_id, tickets_to=None, projects_to=None)


def test_only_active_people_are_offered_projects(session, admin):
    from portal.services import choices

    gone = f.make_staff(session, role="project_manager", employment_status="inactive")
    here = f.make_staff(session, role="project_manager")
    offered = {i for i, _ in choices.project_managers(session)}
    assert here.employee_id in offered and gone.employee_id not in offered
