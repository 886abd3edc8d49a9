"""Project pages: a manager creates a project, plans phases (budget refused beside the field), asks
the sponsor (who is emailed), and the phase starts only once approved."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from portal.models import Project, ProjectPhase
from tests import factories as f


def test_project_manager_plans_a_project(browser, session, outbox):
    pm = f.make_staff(session, role="project_manager")
    customer = f.make_customer(session, company_name="Orbit Dental")
    sponsor = f.make_contact(session, customer=customer, can_approve_projects=True)
    browser.sign_in(pm.email)
    browser.get("/staff/projects/new")
    response = browser.post("/staff/projects/new", {"customer_id": customer.customer_id, "project_name": "",
                                                    "budget_amount": "abc", "start_date": "2026-12-01",
                                                    "planned_end_date": "2027-01-31"})
    body = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Enter the project name." in body and "Enter the budget as an amount" in body
    response = browser.post("/staff/projects/new", {"customer_id": customer.customer_id, "project_name": "Imaging",
                                                    "budget_amount": "5000", "start_date": "2026-12-01",
                                                    "planned_end_date": "2027-01-31"})
    assert response.status_code == 303
    project = session.scalar(sa.select(Project).where(Project.project_name == "Imaging"))
    url = f"/staff/projects/{project.project_id}"
    browser.get(url)
    response = browser.post(f"{url}/phases", {"phase_name": "Install", "budget_allocation": "6000",
                                              "start_date": "2026-12-01", "end_date": "2026-12-15"})
    assert response.status_code == 422 and "may not exceed the project budget" in response.get_data(as_text=True)
    browser.post(f"{url}/phases", {"phase_name": "Install", "budget_allocation": "3000", "start_date": "2026-12-01",
                                   "end_date": "2026-12-15", "requires_approval": "1"})
    phase = session.scalar(sa.select(ProjectPhase).where(ProjectPhase.project_id == project.project_id))
    response = browser.post(f"{url}/phases/{phase.phase_id}/status", {"phase_status": "active"})
    assert response.status_code == 422 and "waits for the customer" in response.get_data(as_text=True)
    assert browser.post(f"{url}/phases/{phase.phase_id}/request-approval").status_code == 303
    assert [m.to for m in outbox] == [sponsor.email] and "Install" in outbox[0].subject
    page = browser.get(url).get_data(as_text=True)
    assert "Awaiting the customer" in page and "Approval requested from" in page


@pytest.mark.parametrize("role, own", [("technician", False), ("senior_technician", False), ("project_manager", False),
                                       ("project_manager", True), ("account_manager", False), ("admin", False)])
def test_project_and_contract_money_on_staff_pages_by_role(browser, session, role, own):
    """Technicians saw contract fees and project budgets: now only account managers, admins and the
    project's own manager do."""
    from decimal import Decimal

    from tests.web.test_permissions import _sign_in_quickly

    me = f.make_staff(session, role=role)
    manager = me if own else f.make_staff(session, role="project_manager")
    customer = f.make_customer(session)
    f.make_contract(session, customer, monthly_fee=Decimal("2345.00"))
    project = f.make_project(session, customer=customer, project_manager_id=manager.employee_id,
                             budget_amount=Decimal("8765.00"), actual_cost=Decimal("1234.00"))
    _sign_in_quickly(browser, session, me)
    sees_projects = role in ("account_manager", "admin") or own
    sees_contracts = role in ("account_manager", "admin")
    listing = browser.get("/staff/projects/").get_data(as_text=True)
    detail = browser.get(f"/staff/projects/{project.project_id}").get_data(as_text=True)
    page = browser.get(f"/staff/customers/{customer.customer_id}").get_data(as_text=True)
    assert project.project_name in listing
    for body in (listing, detail):
        assert ("$8,765.00" in body and "$1,234.00" in body) is sees_projects
        assert ("8,765" in body or "1,234" in body) is sees_projects
    assert ("$2,345.00" in page) is sees_contracts and ("Monthly" in page) is sees_contracts
