"""Time entries (services/timesheets.py): logging time on a ticket or a project."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from portal.models import Account, AuditEvent, TimeEntry
from portal.services import auth, timesheets
from portal.services.errors import Forbidden, Invalid, NotFound
from portal.services.timesheets import NewTimeEntry, hours_between, log_time
from tests import commands
from tests import factories as f

NOW = datetime(2026, 6, 10, 15, 0, tzinfo=UTC)
TODAY = NOW.date()
D = Decimal


def principal(session, person):
    account_id = session.scalar(sa.select(Account.account_id).where(Account.email == person.email))
    return auth.principal_for(session, account_id)


@pytest.fixture
def tech(session):
    employee = f.make_staff(session, hourly_rate_client=D("137.50"), hourly_rate_internal=D("61.00"))
    return employee, principal(session, employee)


@pytest.fixture
def ticket(session):
    return f.make_ticket(session, f.make_customer(session))


def entry(**kw) -> NewTimeEntry:
    values = dict(work_date=TODAY.isoformat(), hours="1.5", description="Replaced the fuser.")
    values.update(kw)
    return commands.time_entry(**values)


class TestLogTime:
    def test_on_a_ticket_customer_rate_and_status_come_from_the_system(self, session, tech, ticket):
        employee, who = tech
        logged = log_time(session, who.at("192.0.2.10"), entry(ticket_id=ticket.ticket_id, start_time="09:00",
                                                              end_time="10:30", hours="8"), now=NOW)
        assert logged.customer_id == ticket.customer_id  # from the ticket; the input has no say
        assert logged.employee_id == employee.employee_id
        assert (logged.ticket_id, logged.project_id) == (ticket.ticket_id, None)
        assert logged.hours_worked == D("1.50")  # from start and end, not the typed hours
        assert (logged.start_time, logged.end_time) == (time(9, 0), time(10, 30))
        assert logged.billing_rate == D("137.50") == employee.hourly_rate_client
        assert logged.approval_status == "pending" and logged.approved_by_employee_id is None
        assert logged.work_date == TODAY and logged.work_category == "support" and logged.is_billable
        stored = session.execute(sa.select(TimeEntry.__table__).where(TimeEntry.entry_id == logged.entry_id)).one()
        assert (stored.customer_id, stored.hours_worked, stored.billing_rate, stored.approval_status) \
            == (ticket.customer_id, D("1.50"), D("137.50"), "pending")
        [event] = session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "time_entry.logged",
                                                              AuditEvent.row_id == logged.entry_id)).all()
        assert (event.actor_type, event.actor_id, event.table_name) == ("employee", employee.employee_id,
                                                                        "time_entries")
        assert event.changes == {"hours_worked": {"old": None, "new": "1.50"}}
        assert str(event.ip_address) == "192.0.2.10"

    def test_on_a_project_the_customer_is_the_project_s(self, session):
        pm = f.make_staff(session, role="project_manager")
        project = f.make_project(session, project_status="active", project_manager_id=pm.employee_id)
        logged = log_time(session, principal(session, pm),
                          entry(project_id=project.project_id, work_category="project", is_billable=False), now=NOW)
        assert (logged.customer_id, logged.project_id, logged.ticket_id) \
            == (project.customer_id, project.project_id, None)
        assert logged.work_category == "project" and not logged.is_billable
        assert (logged.start_time, logged.end_time) == (None, None)

    @pytest.mark.parametrize("hours, stored", [("1.5", D("1.50")), ("0.25", D("0.25")), ("1.75", D("1.75")),
                                               ("24", D("24")), ("0.01", D("0.01"))])
    def test_typed_hours(self, session, tech, ticket, hours, stored):
        logged = log_time(session, tech[1], entry(ticket_id=ticket.ticket_id, hours=hours), now=NOW)
        assert logged.hours_worked == stored

    @pytest.mark.parametrize("hours", ["0", "0.00", "-1", "24.01", "25", "", "1.255", "Infinity", "1e30", "-0"])
    def test_bad_hours_are_refused(self, session, tech, ticket, hours):
        with pytest.raises(Invalid) as caught:
            log_time(session, tech[1], entry(ticket_id=ticket.ticket_id, hours=hours), now=NOW)
        assert caught.value.field == "hours"

    @pytest.mark.parametrize("hours", ["NaN", "nan", "sNaN"])
    def test_not_a_number_hours_are_refused(self, session, tech, ticket, hours):
        with pytest.raises(Invalid) as caught:
            log_time(session, tech[1], entry(ticket_id=ticket.ticket_id, hours=hours), now=NOW)
        assert caught.value.field == "hours"

    @pytest.mark.parametrize("start, end", [("10:30", "09:00"), ("09:00", "09:00"), ("17:00", "08:59")])
    def test_end_not_after_start_is_refused_on_end_time(self, session, tech, ticket, start, end):
        with pytest.raises(Invalid) as caught:
            log_time(session, tech[1], entry(ticket_id=ticket.ticket_id, start_time=start, end_time=end), now=NOW)
        assert caught.value.field == "end_time"

    def test_start_without_end_uses_the_typed_hours(self, session, tech, ticket):
        logged = log_time(session, tech[1], entry(ticket_id=ticket.ticket_id, start_time="09:00", hours="2"),
                          now=NOW)
        assert logged.hours_worked == D("2") and logged.start_time is None

    def test_whole_day_from_start_and_end(self, session, tech, ticket):
        logged = log_time(session, tech[1], entry(ticket_id=ticket.ticket_id, start_time="00:00",
                                                  end_time="23:59"), now=NOW)
        assert logged.hours_worked == D("23.98")

    @pytest.mark.parametrize("days", [2, 30, 400])
    def test_future_day_is_refused(self, session, tech, ticket, days):
        with pytest.raises(Invalid) as caught:
            log_time(session, tech[1], entry(ticket_id=ticket.ticket_id,
                                             work_date=(TODAY + timedelta(days=days)).isoformat()), now=NOW)
        assert caught.value.field == "work_date"

    def test_tomorrow_is_tolerated_for_time_zones_ahead_of_utc(self, session, tech, ticket):
        # The check is against the UTC date plus one day: a technician in UTC+10 is already on tomorrow.
        logged = log_time(session, tech[1], entry(ticket_id=ticket.ticket_id,
                                                  work_date=(TODAY + timedelta(days=1)).isoformat()), now=NOW)
        assert logged.work_date == TODAY + timedelta(days=1)

    @pytest.mark.parametrize("raw, ok", [((TODAY - timedelta(days=366)).isoformat(), True),
                                         ((TODAY - timedelta(days=367)).isoformat(), False),
                                         ("", False)])
    def test_past_days_and_bad_dates(self, session, tech, ticket, raw, ok):
        data = entry(ticket_id=ticket.ticket_id, work_date=raw)
        if ok:
            assert log_time(session, tech[1], data, now=NOW).work_date == date.fromisoformat(raw)
        else:
            with pytest.raises(Invalid) as caught:
                log_time(session, tech[1], data, now=NOW)
            assert caught.value.field == "work_date"

    def test_contact_may_not_log_time(self, session, ticket):
        contact = f.make_contact_login(session, customer=ticket.customer)
        with pytest.raises(Forbidden):
            log_time(session, principal(session, contact), entry(ticket_id=ticket.ticket_id), now=NOW)

    @pytest.mark.parametrize("status", ["cancelled", "completed"])
    def test_closed_project_takes_no_time(self, session, tech, status):
        project = f.make_project(session, project_status=status)
        session.expire(project)  # as a request finds it: loaded from the database, the status an enum
        with pytest.raises(Invalid) as caught:
            log_time(session, tech[1], entry(project_id=project.project_id), now=NOW)
        assert caught.value.field == "project_id"
        assert session.scalar(sa.select(sa.func.count()).select_from(TimeEntry)
                              .where(TimeEntry.project_id == project.project_id)) == 0

    @pytest.mark.parametrize("status", ["planning", "active", "on_hold"])
    def test_open_project_takes_time(self, session, tech, status):
        project = f.make_project(session, project_status=status)
        assert log_time(session, tech[1], entry(project_id=project.project_id), now=NOW).project_id \
            == project.project_id

    def test_exactly_one_ticket_or_project(self, session, tech, ticket):
        project = f.make_project(session, project_status="active")
        for ids in ({}, {"ticket_id": ticket.ticket_id, "project_id": project.project_id}):
            with pytest.raises(Invalid) as caught:
                log_time(session, tech[1], entry(**ids), now=NOW)
            assert caught.value.field == "ticket_id"

    def test_unknown_ticket_or_project(self, session, tech):
        with pytest.raises(NotFound):
            log_time(session, tech[1], entry(ticket_id=2_000_000_000), now=NOW)
        with pytest.raises(NotFound):
            log_time(session, tech[1], entry(project_id=2_000_000_000), now=NOW)

    @pytest.mark.parametrize("kw, field", [({"work_category": ""}, "work_category"),
                                           ({"description": "   "}, "description")])
    def test_category_and_description(self, session, tech, ticket, kw, field):
        with pytest.raises(Invalid) as caught:
            log_time(session, tech[1], entry(ticket_id=ticket.ticket_id, **kw), now=NOW)
        assert caught.value.field == field

    @pytest.mark.parametrize("role", ["senior_technician", "project_manager", "account_manager", "admin"])
    def test_every_employee_logs_own_time_at_own_rate(self, session, ticket, role):
        employee = f.make_staff(session, role=role, hourly_rate_client=D("210.00"))
        logged = log_time(session, principal(session, employee), entry(ticket_id=ticket.ticket_id), now=NOW)
        assert logged.employee_id == employee.employee_id and logged.billing_rate == D("210.00")


class TestHelpers:
    def test_hours_between(self):
        assert hours_between(time(9, 0), time(10, 30)) == D("1.50")
        assert hours_between(time(9, 0), time(9, 20)) == D("0.33")
        assert hours_between(time(9, 0, 59), time(9, 1)) == D("0.02")  # to the minute
        with pytest.raises(Invalid):
            hours_between(time(10, 0), time(10, 0))

    def test_ticket_time_sums_approved_and_pending(self, session, tech, ticket):
        approver = f.make_employee(session, role="senior_technician")
        f.make_time_entry(session, tech[0], ticket=ticket, hours_worked=D("1.25"), approval_status="approved",
                          approved_by_employee_id=approver.employee_id, approved_at=NOW)
        f.make_time_entry(session, tech[0], ticket=ticket, hours_worked=D("0.50"), work_date=date(2026, 6, 5))
        f.make_time_entry(session, tech[0], ticket=ticket, hours_worked=D("3.00"), approval_status="rejected")
        approved, pending, entries = timesheets.ticket_time(session, ticket.ticket_id)
        assert (approved, pending) == (D("1.25"), D("0.50"))
        assert len(entries) == 3 and entries[0].work_date == date(2026, 6, 5)  # newest first
        assert timesheets.ticket_time(session, 2_000_000_000) == (D(0), D(0), [])
