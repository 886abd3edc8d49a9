"""Edges a review found: out-of-range ids and dates, NaN, stale forms, and rules that must hold in the service."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from portal.models import ProjectPhase
from portal.services import auth, tickets
from portal.services.errors import Invalid
from portal.services.projects import change_phase_status, update_phase
from portal.services.timesheets import log_time
from tests import commands
from tests import factories as f
from tests.web.test_permissions import _sign_in_quickly

BIG = 2**31


@pytest.fixture
def admin(browser, session):
    person = f.make_staff(session, role="admin")
    _sign_in_quickly(browser, session, person)
    return person


@pytest.mark.parametrize("url", [f"/staff/tickets/{BIG}", f"/staff/customers/{BIG}", f"/staff/projects/{BIG}",
                                 f"/portal/tickets/{BIG}"])
def test_ids_beyond_the_integer_range_are_404(browser, admin, url):
    assert browser.client.get(url).status_code in (403, 404)


@pytest.mark.parametrize("url", [f"/staff/tickets/pickers/contacts?customer_id={BIG}",
                                 f"/staff/approvals?employee_id={BIG}&customer_id={BIG}",
                                 "/staff/timesheet?week=0001-01-01", "/staff/timesheet?week=9999-12-31",
                                 "/staff/approvals?week=9999-12-31"])
def test_out_of_range_query_values_never_500(browser, admin, url):
    assert browser.client.get(url).status_code in (200, 400)


def test_out_of_range_form_ids_are_a_clear_400(browser, session, admin):
    ticket = f.make_ticket(session)
    browser.get(f"/staff/tickets/{ticket.ticket_id}")
    response = browser.post(f"/staff/tickets/{ticket.ticket_id}/assign",
                            {"assigned_employee_id": str(BIG), "version": ticket.version})
    assert response.status_code in (400, 422)


def test_nan_estimate_and_missing_version(browser, session, admin):
    ticket = f.make_ticket(session)
    browser.get(f"/staff/tickets/{ticket.ticket_id}")
    for data in ({"estimated_hours": "NaN", "version": ticket.version},
                 {"estimated_hours": "0.001", "version": ticket.version}, {"priority": "high"}):
        assert browser.post(f"/staff/tickets/{ticket.ticket_id}/details", data).status_code == 422


@pytest.mark.parametrize("estimate", ["1e30", "12345678901234567890123456789", "Infinity", "-0", "1e-30"])
def test_an_estimate_beyond_decimals_range_is_a_message_not_a_500(browser, session, admin, estimate):
    ticket = f.make_ticket(session)
    browser.get(f"/staff/tickets/{ticket.ticket_id}")
    response = browser.post(f"/staff/tickets/{ticket.ticket_id}/details",
                            {"estimated_hours": estimate, "version": ticket.version})
    assert response.status_code == 422
    assert "The estimate must be" in response.get_data(as_text=True) or "Enter the estimate" in \
        response.get_data(as_text=True)


def _principal(session, person):
    account = session.scalar(sa.select(auth.Account).where(auth.Account.email == person.email))
    return auth.principal_for(session, account.account_id)


def test_tickets_are_assigned_only_to_people_who_work_them(session):
    senior = _principal(session, f.make_staff(session, role="senior_technician"))
    manager = f.make_staff(session, role="account_manager")
    ticket = f.make_ticket(session)
    with pytest.raises(Invalid):
        tickets.assign(session, senior, ticket, manager.employee_id, expected_version=None,
                       now=datetime.now(UTC))


def test_no_time_on_a_closed_ticket(session):
    tech = _principal(session, f.make_staff(session))
    ticket = f.make_ticket(session, status="closed", closed_at=datetime(2026, 6, 2, tzinfo=UTC))
    with pytest.raises(Invalid, match="closed"):
        log_time(session, tech, commands.time_entry(work_date=datetime.now(UTC).date().isoformat(), hours="1",
                                                    description="x", ticket_id=ticket.ticket_id), now=datetime.now(UTC))


def test_a_rejected_phase_cannot_be_started_by_dropping_the_approval(session):
    pm = f.make_staff(session, role="project_manager")
    me = _principal(session, pm)
    project = f.make_project(session, project_manager_id=pm.employee_id)
    contact = f.make_contact(session, customer=project.customer, can_approve_projects=True)
    phase = ProjectPhase(project_id=project.project_id, phase_name="Rollout", budget_allocation=100,
                         start_date=project.start_date, end_date=project.planned_end_date, requires_approval=True,
                         approval_requested_at=datetime.now(UTC), rejected_at=datetime.now(UTC),
                         rejection_reason="Too expensive", rejected_by_contact_id=contact.contact_id)
    session.add(phase)
    session.flush()
    update_phase(session, me, phase, commands.phase_plan(phase_name="Rollout", budget_allocation="100",
                                                         start_date=project.start_date.isoformat(),
                                                         end_date=project.planned_end_date.isoformat(),
                                                         requires_approval=False))
    assert phase.requires_approval is True
    with pytest.raises(Invalid, match="waits for the customer's approval"):
        change_phase_status(session, me, phase, "active")


@pytest.mark.parametrize("work", ["ticket:²", "project:١٢", "ticket:", "ticket:99999999999", "nonsense"])
def test_a_time_entry_for_no_real_work_is_a_message_not_a_500(browser, session, admin, work):
    browser.get("/staff/timesheet")
    response = browser.post("/staff/timesheet/entries", {"work": work, "work_date": "2026-11-02", "hours": "1"})
    assert response.status_code == 422 and "field__error" in response.get_data(as_text=True)
