"""A sponsor approves one phase and rejects another, with a reason, in a real headless Chromium, at
desktop and phone size; the project manager is emailed each decision and sees it on the staff page."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import htmx_settled, sign_in

SPONSOR = "sarah.johnson@denvertech.com"  # Denver Tech's primary contact and project sponsor in the demo
MANAGER = "carlos.martinez@techserv.com"


def _make_project(live_app, size: str) -> dict:
    """A project of Denver Tech's with two phases sent to its sponsors: rows of this journey's own, so the
    demo's phase awaiting approval stays for the other journeys."""
    import sqlalchemy as sa

    from portal.extensions import db
    from portal.models import Account, Customer
    from portal.services import auth
    from portal.services.projects import add_phase, create_project, request_phase_approval
    from tests import commands

    now = datetime.now(UTC)
    start = date.today() + timedelta(days=14)
    with live_app.app_context():
        session = db.session
        manager = auth.principal_for(session, session.scalar(
            sa.select(Account.account_id).where(Account.email == MANAGER)))
        customer = session.scalar(sa.select(Customer).where(Customer.primary_contact_email.like("%denvertech%")))
        project = create_project(session, manager, commands.project_plan(
            project_name=f"Backup modernisation ({size})", customer_id=str(customer.customer_id),
            budget_amount="24000", start_date=start.isoformat(),
            planned_end_date=(start + timedelta(days=90)).isoformat(),
            scope_description="Replace tape backups with immutable cloud backups for all servers."), now=now)
        phases = {}
        for name, budget, offset, deliverables in (
                ("Backup design", "6000", 0, "Retention policy, target architecture, restore test plan."),
                ("Cloud vault rollout", "15000", 31, "Vault, agents on 14 servers, first full backup.")):
            phase = add_phase(session, manager, project, commands.phase_plan(
                phase_name=name, budget_allocation=budget, deliverables=deliverables,
                start_date=(start + timedelta(days=offset)).isoformat(),
                end_date=(start + timedelta(days=offset + 30)).isoformat(), requires_approval=True))
            request_phase_approval(session, manager, phase, now=now)
            phases[name] = phase.phase_id
        ids = {"project": project.project_id, "name": project.project_name, **phases}
        session.commit()
        session.remove()
    return ids


def _screenshot(page, path):
    page.evaluate("window.scrollTo(0, 0)")  # a full-page shot of a scrolled page repeats the sticky top bar
    # caret="initial": hiding the caret leaves style="" on every input, which htmx's settle copies
    # onto the swapped-in field of the same id, and the CSP refuses that.
    page.screenshot(path=path, full_page=True, caret="initial")


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_a_sponsor_approves_one_phase_and_rejects_another(new_page, page_problems, live_app, outbox, size):
    ids = _make_project(live_app, size)
    page = new_page(size)
    sign_in(page, SPONSOR)
    page.goto("/portal/projects")
    expect(page.get_by_role("heading", name="Projects", exact=True)).to_be_visible()
    card = page.locator("li.project-card", has_text=ids["name"])
    expect(card).to_contain_text("2 phases await your approval")
    expect(page.locator("#project-list .banner")).to_contain_text("await your approval")
    _screenshot(page, f"/tmp/portal-projects-list-{size}.png")

    card.get_by_role("link", name=ids["name"]).click()
    expect(page.get_by_role("heading", name=ids["name"])).to_be_visible()
    expect(page.locator("#awaiting")).to_contain_text("2 phases await your approval")
    _screenshot(page, f"/tmp/portal-project-awaiting-{size}.png")

    # Approve the design, in place.
    htmx_settled(page)
    page.evaluate("window.__sameDocument = true")  # proves the decisions answer without a page load
    design = page.locator(f"#phase-{ids['Backup design']}")
    mails_before = len(outbox)
    design.get_by_role("button", name="Approve phase").click()
    design = page.locator(f"#phase-{ids['Backup design']}")
    expect(design).to_contain_text("Approved")
    expect(design).to_contain_text("by Sarah Johnson on")
    expect(design.locator(".decision")).to_be_focused()  # the button is gone: the keyboard lands on the result
    expect(page.locator(".toast", has_text="Phase “Backup design” approved.")).to_be_visible()
    expect(page.locator("#awaiting")).to_contain_text("1 phase awaits your approval")

    # Reject the rollout: the reason is asked for first.
    htmx_settled(page)
    rollout = page.locator(f"#phase-{ids['Cloud vault rollout']}")
    rollout.get_by_text("Reject…").click()
    reason = rollout.get_by_label("Why do you reject this phase?")
    expect(reason).to_be_visible()
    rollout.get_by_role("button", name="Reject phase").click()  # empty: refused beside the field, not a bubble
    expect(rollout.locator(".field__error")).to_contain_text("Say why you reject the phase")
    expect(reason).to_be_focused()
    htmx_settled(page)
    reason.fill("Please split the agent rollout per site so we can schedule downtime.")
    _screenshot(page, f"/tmp/portal-project-rejecting-{size}.png")
    rollout.get_by_role("button", name="Reject phase").click()
    rollout = page.locator(f"#phase-{ids['Cloud vault rollout']}")
    expect(rollout).to_contain_text("Rejected")
    expect(rollout).to_contain_text("Please split the agent rollout per site")
    expect(page.locator(".toast", has_text="Phase “Cloud vault rollout” rejected.")).to_be_visible()
    expect(page.locator("#awaiting .banner")).to_have_count(0)
    assert page.evaluate("window.__sameDocument") is True
    _screenshot(page, f"/tmp/portal-project-decided-{size}.png")

    # A reload shows the same: the decisions are saved.
    page.reload()
    expect(page.locator(f"#phase-{ids['Backup design']}")).to_contain_text("by Sarah Johnson")
    expect(page.locator(f"#phase-{ids['Cloud vault rollout']}")).to_contain_text("Please split the agent rollout")
    expect(page.get_by_role("button", name="Approve phase")).to_have_count(0)

    mails = outbox[mails_before:]
    assert [m.to for m in mails] == [MANAGER, MANAGER]
    assert mails[0].subject.startswith("Approved:") and mails[1].subject.startswith("Rejected:")
    assert "Please split the agent rollout per site" in mails[1].body

    # The project manager sees both decisions on the staff page.
    staff = new_page(size)
    sign_in(staff, MANAGER)
    staff.goto(f"/staff/projects/{ids['project']}")
    expect(staff.locator(f"#phase-{ids['Backup design']}")).to_contain_text("Approved by Sarah Johnson on")
    expect(staff.locator(f"#phase-{ids['Cloud vault rollout']}")).to_contain_text(
        "Sarah Johnson rejected it on")
    _screenshot(staff, f"/tmp/portal-project-staff-view-{size}.png")
    assert page_problems.all(expected_status=422) == []  # the empty reason, refused on purpose
