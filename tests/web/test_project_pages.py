"""Project pages: a manager creates a project, plans phases (budget refused beside the field), asks
the sponsor (who is emailed), and the phase starts only once approved."""

from __future__ import annotations

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
