"""Every number a service takes: values beyond what Decimal's context or the column holds are a
message on the field, never an InvalidOperation (a 500) or a database overflow. (The forms refuse
most of these shapes already, tests/web/test_forms.py; the API hands the services whatever JSON
held, so the services hold the line themselves.)"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
import sqlalchemy as sa

from portal.models import Account
from portal.services import auth, tickets
from portal.services.errors import Invalid
from portal.services.projects import add_phase, create_project, update_project
from portal.services.timesheets import log_time
from tests import commands
from tests import factories as f

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)
# Too big for Decimal's 28 digits once quantized, 29 digits, not numbers, and the two zero-ish ones.
EDGES = ["1e30", "12345678901234567890123456789", "NaN", "sNaN", "Infinity", "-Infinity", "-0", "1e-30"]


def principal(session, person):
    account_id = session.scalar(sa.select(Account.account_id).where(Account.email == person.email))
    return auth.principal_for(session, account_id)


@pytest.mark.parametrize("raw", EDGES + ["999.999", "0.004"])
def test_ticket_estimate(session, raw):
    tech = f.make_staff(session)
    ticket = f.make_ticket(session, assigned_employee_id=tech.employee_id, status="in_progress")
    with pytest.raises(Invalid) as caught:
        tickets.update_details(session, principal(session, tech), ticket, estimated_hours=Decimal(raw),
                               expected_version=None, now=NOW)
    assert caught.value.field == "estimated_hours"
    assert ticket.estimated_hours is None


@pytest.mark.parametrize("raw", EDGES + ["24.001", "0.001"])
def test_timesheet_hours(session, raw):
    tech = f.make_staff(session)
    ticket = f.make_ticket(session)
    with pytest.raises(Invalid) as caught:
        log_time(session, principal(session, tech), commands.time_entry(
            work_date=NOW.date().isoformat(), hours=raw, description="Work", ticket_id=ticket.ticket_id), now=NOW)
    assert caught.value.field == "hours"


def _project_form(customer, **kw):
    values = dict(project_name="Network refresh", customer_id=str(customer.customer_id), budget_amount="10000",
                  start_date="2026-12-01", planned_end_date="2027-03-31")
    return commands.project_plan(**(values | kw))


@pytest.mark.parametrize("raw", EDGES + ["9999999999.995", "0.004"])
def test_project_budget_on_create_and_update(session, raw):
    pm = f.make_staff(session, role="project_manager")
    me = principal(session, pm)
    customer = f.make_customer(session)
    with pytest.raises(Invalid) as caught:
        create_project(session, me, _project_form(customer, budget_amount=raw), now=NOW)
    assert caught.value.field == "budget_amount"
    project = create_project(session, me, _project_form(customer), now=NOW)
    with pytest.raises(Invalid) as caught:
        update_project(session, me, project, _project_form(customer, budget_amount=raw,
                                                           project_status=project.project_status.value), now=NOW)
    assert caught.value.field == "budget_amount"
    assert project.budget_amount == Decimal("10000.00")


@pytest.mark.parametrize("raw, stored", [(raw, None) for raw in EDGES[:6]] + [
    ("-0", Decimal("0.00")), ("1e-30", Decimal("0.00")), ("9999999999.995", None)])
def test_phase_budget(session, raw, stored):
    """A phase may have no budget of its own: -0 and 1e-30 are 0.00 in cents; the rest is refused."""
    pm = f.make_staff(session, role="project_manager")
    me = principal(session, pm)
    project = create_project(session, me, _project_form(f.make_customer(session), budget_amount="9999999999"),
                             now=NOW)
    form = commands.phase_plan(phase_name="Survey", budget_allocation=raw, start_date="2026-12-01",
                               end_date="2026-12-20")
    if stored is None:
        with pytest.raises(Invalid) as caught:
            add_phase(session, me, project, form)
        assert caught.value.field == "budget_allocation"
    else:
        phase = add_phase(session, me, project, form)
        assert phase.budget_allocation == stored and not phase.budget_allocation.is_signed()
