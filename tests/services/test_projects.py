"""Projects and phases: who manages, budgets, the customer's approval gating a phase, status moves."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal as D

import pytest
import sqlalchemy as sa

from portal.models import Account, ProjectPhase
from portal.services import auth
from portal.services.errors import Forbidden, Invalid
from portal.services.projects import (
    add_phase,
    customer_approval_state,
    change_phase_status,
    create_project,
    request_phase_approval,
    update_phase,
    update_project,
)
from tests import commands
from tests import factories as f

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)


def principal(session, person):
    account = session.scalar(sa.select(Account).where(Account.email == person.email))
    return auth.principal_for(session, account.account_id)


def project_form(customer, **kw):
    values = dict(project_name="Network refresh", customer_id=str(customer.customer_id), budget_amount="10000",
                  start_date="2026-12-01", planned_end_date="2027-03-31", scope_description="Switches")
    values.update(kw)
    return commands.project_plan(**values)


def phase_form(**kw):
    values = dict(phase_name="Survey", budget_allocation="4000", start_date="2026-12-01", end_date="2026-12-20")
    values.update(kw)
    return commands.phase_plan(**values)


@pytest.fixture
def pm_project(session):
    pm = f.make_staff(session, role="project_manager")
    customer = f.make_customer(session)
    project = create_project(session, principal(session, pm), project_form(customer), now=NOW)
    return pm, customer, project


def test_a_project_manager_creates_their_own_project_numbered_from_the_sequence(session, pm_project):
    pm, customer, project = pm_project
    assert project.project_number.startswith("PRJ-2026-") and project.project_manager_id == pm.employee_id
    assert project.project_status == "planning" and project.budget_amount == D("10000.00")


@pytest.mark.parametrize("role", ["technician", "senior_technician", "account_manager"])
def test_other_roles_do_not_create_projects(session, role):
    with pytest.raises(Forbidden):
        create_project(session, principal(session, f.make_staff(session, role=role)),
                       project_form(f.make_customer(session)), now=NOW)


def test_every_bad_field_is_named(session):
    pm = f.make_staff(session, role="project_manager")
    with pytest.raises(Invalid) as caught:
        create_project(session, principal(session, pm), commands.project_plan(budget_amount="-5"), now=NOW)
    assert {"project_name", "customer_id", "budget_amount", "start_date", "planned_end_date"} <= set(caught.value.errors)


def test_phases_may_not_exceed_the_project_budget(session, pm_project):
    pm, _, project = pm_project
    me = principal(session, pm)
    add_phase(session, me, project, phase_form(budget_allocation="6000"))
    with pytest.raises(Invalid) as caught:
        add_phase(session, me, project, phase_form(phase_name="Rollout", budget_allocation="4000.01"))
    assert caught.value.field == "budget_allocation" and "$4,000.00 is left" in caught.value.message
    add_phase(session, me, project, phase_form(phase_name="Rollout", budget_allocation="4000"))
    with pytest.raises(Invalid, match=r"The phases already take \$[0-9,]+\.\d\d; the budget cannot be less"):
        update_project(session, me, project, project_form(project.customer, budget_amount="9999"), now=NOW)


def test_another_managers_project_is_read_only_but_admins_change_any(session, pm_project):
    _, customer, project = pm_project
    other_pm = f.make_staff(session, role="project_manager")
    with pytest.raises(Forbidden):
        add_phase(session, principal(session, other_pm), project, phase_form())
    admin = f.make_staff(session, role="admin")
    add_phase(session, principal(session, admin), project, phase_form())


def test_a_phase_needing_approval_starts_only_once_a_sponsor_approved(session, pm_project):
    pm, customer, project = pm_project
    me = principal(session, pm)
    sponsor = f.make_contact(session, customer=customer, can_approve_projects=True)
    f.make_contact(session, customer=customer)  # not a sponsor
    phase = add_phase(session, me, project, phase_form(requires_approval=True))
    with pytest.raises(Invalid, match="waits for the customer's approval"):
        change_phase_status(session, me, phase, "active")
    asked = request_phase_approval(session, me, phase, now=NOW)
    assert [c.contact_id for c in asked] == [sponsor.contact_id]
    assert customer_approval_state(phase) == "awaiting"
    phase.approved_at = NOW
    phase.approved_by_contact_id = sponsor.contact_id
    session.flush()
    change_phase_status(session, me, phase, "active")
    assert phase.phase_status == "active"


def test_no_sponsor_means_no_request(session, pm_project):
    pm, _, project = pm_project
    phase = add_phase(session, principal(session, pm), project, phase_form())
    with pytest.raises(Invalid, match="no project sponsor"):
        request_phase_approval(session, principal(session, pm), phase, now=NOW)


def test_changing_an_approved_phase_needs_approval_again(session, pm_project):
    pm, customer, project = pm_project
    sponsor = f.make_contact(session, customer=customer, can_approve_projects=True)
    me = principal(session, pm)
    phase = add_phase(session, me, project, phase_form(requires_approval=True))
    phase.approved_at, phase.approved_by_contact_id = NOW, sponsor.contact_id
    session.flush()
    update_phase(session, me, phase, phase_form(budget_allocation="5000", requires_approval=True))
    assert phase.approved_at is None and customer_approval_state(phase) == "not_requested"


@pytest.mark.parametrize("path, allowed", [
    (["active", "completed"], True), (["on_hold", "active"], True), (["cancelled"], True),
    (["completed"], False), (["active", "completed", "active"], False), (["cancelled", "active"], False),
])
def test_project_status_moves(session, pm_project, path, allowed):
    pm, customer, project = pm_project
    me = principal(session, pm)

    def walk():
        for status in path:
            update_project(session, me, project, project_form(customer, project_status=status), now=NOW)

    if allowed:
        walk()
        if path[-1] == "completed":
            assert project.actual_end_date == date(2026, 12, 1) and project.completion_percentage == 100
    else:
        with pytest.raises(Invalid):
            walk()


def test_a_cancelled_project_takes_no_more_time_or_phases(session, pm_project):
    from portal.services.timesheets import log_time

    pm, customer, project = pm_project
    me = principal(session, pm)
    update_project(session, me, project, project_form(customer, project_status="cancelled"), now=NOW)
    with pytest.raises(Invalid, match="cancelled"):
        add_phase(session, me, project, phase_form())
    tech = f.make_staff(session)
    with pytest.raises(Invalid, match="takes no more time"):
        log_time(session, principal(session, tech), commands.time_entry(work_date="2026-11-25", hours="1", description="x",
                                                                 project_id=project.project_id), now=NOW)
    assert session.scalar(sa.select(sa.func.count()).select_from(ProjectPhase)) == 0
