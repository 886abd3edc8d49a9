"""Who sees contract fees and project money on staff pages (policy.may_see_contract_money,
policy.may_see_project_money): account managers, admins, and a project's own manager. For everyone
else the services leave the numbers out (None)."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
import sqlalchemy as sa

from portal.models import Account, ProjectPhase
from portal.services import auth
from portal.services.dashboards import customer_overview
from portal.services.projects import project_for_staff, project_list, project_money
from tests import factories as f

ROLES = ["technician", "senior_technician", "project_manager", "account_manager", "admin"]


def principal(session, person):
    account_id = session.scalar(sa.select(Account.account_id).where(Account.email == person.email))
    return auth.principal_for(session, account_id)


@pytest.mark.parametrize("role", ROLES)
def test_contract_fees_only_for_account_managers_and_admins(session, role):
    customer = f.make_customer(session)
    f.make_contract(session, customer, monthly_fee=D("2345.00"))
    overview = customer_overview(session, principal(session, f.make_staff(session, role=role)), customer.customer_id)
    sees = role in ("account_manager", "admin")
    assert overview.contract_money is sees
    assert [k.monthly_fee for k in overview.contracts] == [D("2345.00") if sees else None]
    assert not any(hasattr(k, "hourly_rate_additional") for k in overview.contracts)


@pytest.mark.parametrize("role, own", [(role, False) for role in ROLES] + [("project_manager", True)])
def test_project_money_only_for_account_managers_admins_and_its_own_manager(session, role, own):
    me = f.make_staff(session, role=role)
    manager = me if own else f.make_staff(session, role="project_manager")
    project = f.make_project(session, project_manager_id=manager.employee_id, budget_amount=D("8765.00"),
                             actual_cost=D("1234.00"))
    session.add(ProjectPhase(project_id=project.project_id, phase_name="Survey", budget_allocation=D("3000.00"),
                             start_date=project.start_date, end_date=project.planned_end_date))
    session.flush()
    who = principal(session, me)
    sees = role in ("account_manager", "admin") or own

    [row] = [r for r in project_list(session, who) if r.project_id == project.project_id]
    assert (row.budget, row.spent, row.burn) == ((D("8765.00"), D("1234.00"), 14) if sees else (None, None, None))
    assert not hasattr(row, "project")  # no ORM object carrying the numbers to the page
    money = project_money(who, project_for_staff(session, project.project_id))
    if sees:
        assert (money.budget, money.spent, money.phases_total, money.burn) == (
            D("8765.00"), D("1234.00"), D("3000.00"), 14)
        assert list(money.phase_budgets.values()) == [D("3000.00")]
    else:
        assert money is None
