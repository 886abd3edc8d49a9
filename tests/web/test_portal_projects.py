"""The portal's projects pages: the company's projects, a project with its phases, and a sponsor's
approval or rejection of a phase, as a plain form (303) and in place with htmx (the phase + a toast)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal as D

import pytest

from portal.models import ProjectPhase
from tests import factories as f
from tests.conftest import Browser, count_queries

ASKED = datetime(2026, 11, 20, 9, tzinfo=UTC)


def make_phase(session, project, name, *, asked=True, **kw):
    values = dict(project_id=project.project_id, phase_name=name, budget_allocation=D("1000.00"),
                  start_date=project.start_date, end_date=project.planned_end_date, deliverables=f"{name} done.",
                  requires_approval=True, approval_requested_at=ASKED if asked else None)
    values.update(kw)
    phase = ProjectPhase(**values)
    session.add(phase)
    session.flush()
    return phase


@pytest.fixture
def world(session):
    customer = f.make_customer(session, company_name="Orbit Dental")
    pm = f.make_staff(session, role="project_manager", first_name="Carla", last_name="Mendez",
                      hourly_rate_internal=D("61.17"))
    sponsor = f.make_contact_login(session, customer=customer, can_approve_projects=True, first_name="Ann",
                                   last_name="Sponsor")
    project = f.make_project(session, customer=customer, project_manager_id=pm.employee_id, project_name="Imaging",
                             scope_description="New imaging server and workstations.",
                             budget_amount=D("12000.00"), actual_cost=D("3000.00"), completion_percentage=30,
                             project_status="active")
    design = make_phase(session, project, "Design")
    build = make_phase(session, project, "Build")
    return {"customer": customer, "pm": pm, "sponsor": sponsor, "project": project, "design": design,
            "build": build, "url": f"/portal/projects/{project.project_id}"}


def phase_url(world, phase, action):
    return f"{world['url']}/phases/{phase.phase_id}/{action}"


# --- the list ----------------------------------------------------------------------------------

def test_the_list_shows_the_companys_projects_and_what_awaits_the_sponsor(browser, session, world):
    f.make_project(session, customer=world["customer"], project_name="Old phones", project_status="cancelled")
    f.make_project(session, project_name="Someone else's project")
    browser.sign_in(world["sponsor"].email)
    response = browser.get("/portal/projects")
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" in page and "HX-Request" in response.headers["Vary"]
    assert "2 phases await your approval" in page
    assert page.index("Imaging") < page.index("Old phones")  # cancelled last
    assert "Someone else" not in page
    assert "30 %" in page and "$12,000.00" in page and "Awaits approval" in page
    assert f'href="{world["url"]}#phase-{world["design"].phase_id}"' in page
    fragment = browser.get("/portal/projects", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "<html" not in fragment and fragment.lstrip().startswith('<div id="project-list">')
    assert "Imaging" in fragment


def test_a_primary_contact_sees_the_projects_without_being_asked_to_approve(browser, session, world):
    primary = f.make_contact_login(session, customer=world["customer"], is_primary_contact=True)
    browser.sign_in(primary.email)
    page = browser.get("/portal/projects").get_data(as_text=True)
    assert "Imaging" in page and "await your approval" not in page
    page = browser.get(world["url"]).get_data(as_text=True)
    assert "Awaiting approval" in page and "by a project sponsor of Orbit Dental" in page
    assert "Approve phase" not in page and "Reject phase" not in page


def test_an_empty_list_says_what_will_come(browser, session):
    sponsor = f.make_contact_login(session, can_approve_projects=True)
    browser.sign_in(sponsor.email)
    page = browser.get("/portal/projects").get_data(as_text=True)
    assert "No projects yet" in page


def test_the_list_paginates(browser, session, world):
    for n in range(25):
        f.make_project(session, customer=world["customer"], project_name=f"Rollout {n:02d}",
                       start_date=date(2025, 1, 1) + timedelta(days=n))
    browser.sign_in(world["sponsor"].email)
    page = browser.get("/portal/projects").get_data(as_text=True)
    assert "Page 1 of 2 · 26 projects" in page and 'href="/portal/projects?page=2"' in page
    second = browser.get("/portal/projects?page=2", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "Page 2 of 2" in second and second.count('class="card project-card') == 6
    for odd in ("abc", "-3", "99999999999999999999999"):
        assert browser.get(f"/portal/projects?page={odd}").status_code == 200


@pytest.mark.parametrize("flags", [{}, {"is_billing_contact": True}, {"can_create_tickets": False}])
def test_contacts_who_are_neither_sponsor_nor_primary_get_a_403(browser, session, world, flags):
    contact = f.make_contact_login(session, customer=world["customer"], **flags)
    browser.sign_in(contact.email)
    assert browser.get("/portal/projects").status_code == 403
    assert browser.get(world["url"]).status_code == 403
    assert browser.post(phase_url(world, world["design"], "approve")).status_code == 403


# --- the project page ----------------------------------------------------------------------------

def test_the_project_page_shows_plan_phases_and_the_decision_buttons(browser, session, world):
    browser.sign_in(world["sponsor"].email)
    response = browser.get(world["url"])
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    for text in ("Imaging", "New imaging server and workstations.", "project manager Carla Mendez",
                 "$12,000.00", "Work approved so far", "$3,000.00", "25 %", "30 %", "Design done.",
                 "2 phases await your approval", "Awaiting your approval", "Approve phase", "Reject phase"):
        assert text in page, text
    assert page.index(f'id="phase-{world["design"].phase_id}"') < page.index(f'id="phase-{world["build"].phase_id}"')
    assert '<textarea id="reason-%d" name="reason" rows="3" required aria-required="true" maxlength="2000"' \
        % world["build"].phase_id in page
    # The server's message beside the field, not the browser's bubble that fades (issue 10).
    assert 'class="form decision__form" novalidate>' in page
    assert "61.17" not in page and "hourly" not in page  # no internal rates, ever
    assert "<script>" not in page and "style=" not in page


def test_another_customers_project_is_a_404(browser, session, world):
    other = f.make_contact_login(session, can_approve_projects=True, is_primary_contact=True)
    browser.sign_in(other.email)
    assert browser.get(world["url"]).status_code == 404
    assert browser.post(phase_url(world, world["design"], "approve")).status_code == 404
    assert browser.post(phase_url(world, world["build"], "reject"), {"reason": "x"}).status_code == 404
    assert session.get(ProjectPhase, world["design"].phase_id).approved_at is None


def test_a_phase_of_another_project_in_the_url_is_a_404(browser, session, world):
    second = f.make_project(session, customer=world["customer"])
    browser.sign_in(world["sponsor"].email)
    url = f"/portal/projects/{second.project_id}/phases/{world['design'].phase_id}/approve"
    assert browser.post(url).status_code == 404


# --- deciding: plain forms -----------------------------------------------------------------------

def test_a_sponsor_approves_with_a_plain_form(browser, session, world, outbox):
    browser.sign_in(world["sponsor"].email)
    browser.get(world["url"])
    response = browser.post(phase_url(world, world["design"], "approve"))
    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"{world['url']}#phase-{world['design'].phase_id}")
    page = browser.get(world["url"]).get_data(as_text=True)
    assert "Phase “Design” approved. The project manager will be emailed." in page
    assert "by Ann Sponsor" in page and "1 phase awaits your approval" in page
    phase = session.get(ProjectPhase, world["design"].phase_id)
    session.refresh(phase)
    assert phase.approved_by_contact_id == world["sponsor"].contact_id
    assert [m.to for m in outbox] == [world["pm"].email]
    assert outbox[0].subject == "Approved: Imaging, phase “Design”"
    assert "Ann Sponsor (Orbit Dental) approved the phase “Design”" in outbox[0].body
    assert f"/staff/projects/{world['project'].project_id}#phase-{world['design'].phase_id}" in outbox[0].body


def test_a_sponsor_rejects_with_a_reason(browser, session, world, outbox):
    browser.sign_in(world["sponsor"].email)
    browser.get(world["url"])
    response = browser.post(phase_url(world, world["build"], "reject"), {"reason": "Wait for the new lease."})
    assert response.status_code == 303
    page = browser.get(world["url"]).get_data(as_text=True)
    assert "Phase “Build” rejected." in page and "Wait for the new lease." in page and "by Ann Sponsor" in page
    assert outbox[0].to == world["pm"].email and outbox[0].subject.startswith("Rejected: Imaging")
    assert "Their reason:\nWait for the new lease." in outbox[0].body


@pytest.mark.parametrize("reason, message", [("", "Say why you reject the phase"),
                                             ("x" * 2001, "The reason can be at most 2,000 characters")])
def test_a_rejection_without_a_sensible_reason_is_refused_beside_the_field(browser, session, world, outbox,
                                                                          reason, message):
    browser.sign_in(world["sponsor"].email)
    browser.get(world["url"])
    response = browser.post(phase_url(world, world["build"], "reject"), {"reason": reason})
    page = response.get_data(as_text=True)
    assert response.status_code == 422 and "<html" in page
    pid = world["build"].phase_id
    assert f'<p class="field__error" id="reason-{pid}-error" role="alert">{message}' in page
    assert '<details class="decision__reject" open>' in page and 'aria-invalid="true"' in page
    if reason:
        assert reason in page  # what was typed is kept
    assert outbox == []
    assert session.get(ProjectPhase, pid).rejected_at is None


def test_a_decided_phase_answers_409_saying_who_decided(browser, session, world):
    colleague = f.make_contact(session, customer=world["customer"], can_approve_projects=True, first_name="Bo",
                               last_name="Other")
    world["design"].approved_at = ASKED + timedelta(days=1)
    world["design"].approved_by_contact_id = colleague.contact_id
    session.flush()
    browser.sign_in(world["sponsor"].email)
    browser.get(world["url"])
    response = browser.post(phase_url(world, world["design"], "reject"), {"reason": "No"})
    assert response.status_code == 409
    assert "Bo Other approved this phase on 21 Nov 2026" in response.get_data(as_text=True)
    response = browser.post(phase_url(world, world["design"], "approve"), headers={"HX-Request": "true"})
    assert response.status_code == 409 and "Bo Other approved" in json.loads(
        response.headers["HX-Trigger"])["showToast"]["message"]


def test_a_phase_not_sent_for_approval_cannot_be_decided(browser, session, world):
    unasked = make_phase(session, world["project"], "Training", asked=False)
    browser.sign_in(world["sponsor"].email)
    page = browser.get(world["url"]).get_data(as_text=True)
    assert "Needs approval" in page
    response = browser.post(phase_url(world, unasked, "approve"))
    assert response.status_code == 422 and "has not asked for your approval" in response.get_data(as_text=True)


def test_suspended_customers_and_non_sponsors_cannot_decide(browser, other_browser, session, world):
    primary = f.make_contact_login(session, customer=world["customer"], is_primary_contact=True)
    browser.sign_in(primary.email)
    assert browser.post(phase_url(world, world["design"], "approve")).status_code == 403
    suspended = f.make_customer(session, account_status="suspended")
    sponsor = f.make_contact_login(session, customer=suspended, can_approve_projects=True)
    project = f.make_project(session, customer=suspended)
    phase = make_phase(session, project, "Plan")
    other = other_browser
    other.sign_in(sponsor.email)
    page = other.get(f"/portal/projects/{project.project_id}").get_data(as_text=True)
    assert "Awaiting approval" in page and "Approve phase" not in page
    assert other.post(f"/portal/projects/{project.project_id}/phases/{phase.phase_id}/approve").status_code == 403
    assert session.get(ProjectPhase, phase.phase_id).approved_at is None


# --- deciding in place with htmx -------------------------------------------------------------

def test_approving_with_htmx_answers_the_phase_and_a_toast(browser, session, world):
    browser.sign_in(world["sponsor"].email)
    browser.get(world["url"])
    response = browser.post(phase_url(world, world["design"], "approve"), headers={"HX-Request": "true"})
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" not in body
    assert body.lstrip().startswith(f'<article class="card phase" id="phase-{world["design"].phase_id}"')
    assert "by Ann Sponsor" in body and "Approve phase" not in body
    assert '<div id="awaiting" class="project-awaiting" hx-swap-oob="true">' in body and "1 phase awaits your approval" in body
    toast = json.loads(response.headers["HX-Trigger"])["showToast"]
    assert toast == {"message": "Phase “Design” approved. The project manager will be emailed.", "level": "success"}


def test_rejecting_with_htmx_without_a_reason_answers_422_with_the_phase(browser, session, world):
    browser.sign_in(world["sponsor"].email)
    browser.get(world["url"])
    response = browser.post(phase_url(world, world["build"], "reject"), {"reason": "  "},
                            headers={"HX-Request": "true"})
    body = response.get_data(as_text=True)
    assert response.status_code == 422 and "<html" not in body
    assert "Say why you reject the phase" in body and '<details class="decision__reject" open>' in body
    assert json.loads(response.headers["HX-Trigger"])["showToast"]["level"] == "error"
    response = browser.post(phase_url(world, world["build"], "reject"), {"reason": "Too early."},
                            headers={"HX-Request": "true"})
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and "Too early." in body and "by Ann Sponsor" in body
    assert '<div id="awaiting" class="project-awaiting" hx-swap-oob="true">' in body


# --- the project manager's side ---------------------------------------------------------------

def test_the_project_manager_sees_the_decisions(browser, other_browser, session, world):
    browser.sign_in(world["sponsor"].email)
    browser.get(world["url"])
    assert browser.post(phase_url(world, world["design"], "approve")).status_code == 303
    assert browser.post(phase_url(world, world["build"], "reject"), {"reason": "Budget is too high."}).status_code == 303
    staff = other_browser
    staff.sign_in(world["pm"].email)
    page = staff.get(f"/staff/projects/{world['project'].project_id}").get_data(as_text=True)
    assert "Approved by Ann Sponsor on " in page
    assert "Ann Sponsor rejected it on " in page and "Budget is too high." in page
    # The approved phase may start; the rejected one offers no Start until it is approved.
    assert page.count('name="phase_status" value="active"') == 1


def test_asking_for_approval_emails_the_sponsors_who_chose_email(browser, session, world, outbox):
    phoned = f.make_contact(session, customer=world["customer"], can_approve_projects=True,
                            communication_preference="phone")
    phase = make_phase(session, world["project"], "Rollout", asked=False)
    world["project"].project_status = "planning"
    session.flush()
    browser.sign_in(world["pm"].email)
    browser.get(f"/staff/projects/{world['project'].project_id}")
    response = browser.post(f"/staff/projects/{world['project'].project_id}/phases/{phase.phase_id}/request-approval")
    assert response.status_code == 303
    assert [m.to for m in outbox] == [world["sponsor"].email]
    assert phoned.email not in [m.to for m in outbox]
    assert outbox[0].subject == "Please approve: Imaging, phase “Rollout”"
    assert f"/portal/projects/{world['project'].project_id}#phase-{phase.phase_id}" in outbox[0].body


# --- a fixed number of queries ------------------------------------------------------------------

def _fill(session, customer, projects, phases):
    for n in range(projects):
        project = f.make_project(session, customer=customer, project_name=f"Load {n}")
        for m in range(phases):
            make_phase(session, project, f"Phase {m}", budget_allocation=D("1.00"))


def test_the_list_runs_the_same_queries_for_3_or_60_projects(browser, session):
    counts = []
    for size in (3, 60):
        customer = f.make_customer(session)
        sponsor = f.make_contact_login(session, customer=customer, can_approve_projects=True)
        _fill(session, customer, size, 3)
        person = Browser(browser.client.application.test_client())
        person.sign_in(sponsor.email)
        assert person.get("/portal/projects").get_data(as_text=True).count('class="card project-card') == min(size, 20)
        counts.append(count_queries(session, lambda: person.get("/portal/projects")))
    assert counts[0] == counts[1], counts


def test_the_project_page_runs_the_same_queries_for_3_or_60_phases(browser, session):
    counts = []
    for size in (3, 60):
        customer = f.make_customer(session)
        sponsor = f.make_contact_login(session, customer=customer, can_approve_projects=True)
        deciders = [f.make_contact(session, customer=customer) for _ in range(2)]
        project = f.make_project(session, customer=customer, budget_amount=D("100000.00"))
        for m in range(size):
            decided = m % 3
            make_phase(session, project, f"Phase {m}", budget_allocation=D("1.00"),
                       approved_at=ASKED if decided == 1 else None,
                       approved_by_contact_id=deciders[0].contact_id if decided == 1 else None,
                       rejected_at=ASKED if decided == 2 else None, rejection_reason="No" if decided == 2 else None,
                       rejected_by_contact_id=deciders[1].contact_id if decided == 2 else None)
        person = Browser(browser.client.application.test_client())
        person.sign_in(sponsor.email)
        url = f"/portal/projects/{project.project_id}"
        assert person.get(url).get_data(as_text=True).count('<article class="card phase') == size
        counts.append(count_queries(session, lambda: person.get(url)))
    assert counts[0] == counts[1], counts
