"""A technician logs time, a senior approves part of it and rejects one entry, the technician
corrects it and sends it again, and the ticket's hours show the approved total. Real Chromium."""

from __future__ import annotations

import re
from datetime import date, timedelta
from decimal import Decimal

from playwright.sync_api import expect

from tests.browser.conftest import htmx_settled, sign_in

TICKET = "Mail merge sends from the wrong address"


def _log(page, day: date, hours: str, what: str):
    htmx_settled(page)  # after the previous entry the form was swapped in anew
    page.get_by_label("Find a ticket or project").fill("Mail merge")
    work = page.locator("#work")
    # Wait for the search to narrow the list (the placeholder and this one ticket), then choose.
    expect(work.locator("option")).to_have_count(2)
    work.select_option(value=work.locator("option", has_text=TICKET).get_attribute("value"))
    page.locator("#add-work_date").fill(day.isoformat())
    page.locator("#add-hours").fill(hours)
    page.locator("#add-description").fill(what)
    page.get_by_role("button", name="Log time", exact=True).click()
    expect(page.locator(".entry", has_text=what)).to_be_visible()


def _approved_hours(live_app) -> Decimal:
    import sqlalchemy as sa

    from portal.extensions import db
    from portal.models import SupportTicket

    with live_app.app_context():
        hours = db.session.scalar(sa.select(SupportTicket.actual_hours).where(SupportTicket.title == TICKET))
        db.session.remove()
    return hours


def test_a_week_of_time_approved_rejected_corrected(new_page, page_problems, live_app):
    monday = date.today() - timedelta(days=date.today().weekday())
    before = _approved_hours(live_app)
    tech = new_page()
    sign_in(tech, "amanda.lee@techserv.com")
    tech.get_by_role("link", name="Timesheet").click()
    tech.evaluate("window.__sameDocument = true")
    # Across the days of this week so far (never a future day, which is refused).
    weekday = date.today().weekday()
    for offset, hours, what in ((0, "2", "Journey: traced the merge profile"),
                                (min(1, weekday), "1.25", "Journey: tested with the user"),
                                (min(2, weekday), "0.75", "Journey: wrote it up")):
        _log(tech, monday + timedelta(days=offset), hours, what)
    assert tech.evaluate("window.__sameDocument") is True

    senior = new_page()
    sign_in(senior, "john.davis@techserv.com")
    senior.get_by_role("link", name="Approvals").click()
    expect(senior.get_by_role("heading", name="Time to approve")).to_be_visible()
    senior.wait_for_load_state()
    htmx_settled(senior)  # the filters change the list through htmx: choose only once it is wired up
    senior.get_by_label("Employee").select_option(label="Amanda Lee")
    expect(senior).to_have_url(re.compile(r"employee_id=\d+"))  # the filtered list has replaced the old one
    for what in ("Journey: traced the merge profile", "Journey: tested with the user"):
        senior.get_by_role("row", name=re.compile(what)).get_by_role("checkbox").check()
    htmx_settled(senior)
    senior.get_by_role("button", name="Approve selected").click()
    expect(senior.get_by_text("2 entries approved.")).to_be_visible()
    htmx_settled(senior)  # the toast comes before the new list: choose only once it is in
    senior.get_by_role("row", name=re.compile("Journey: wrote it up")).get_by_role("checkbox").check()
    senior.get_by_label("Reason to reject").fill("Knowledge-base writing is not billable: untick Billable")
    htmx_settled(senior)
    senior.get_by_role("button", name="Reject selected").click()
    expect(senior.get_by_text("1 entry rejected.")).to_be_visible()

    tech.reload()
    htmx_settled(tech)
    rejected = tech.locator(".entry--rejected")
    expect(rejected).to_contain_text("Knowledge-base writing is not billable")
    htmx_settled(tech)
    rejected.get_by_role("link", name="Correct").click()
    tech.locator("#edit-is_billable").uncheck()
    htmx_settled(tech)
    tech.get_by_role("button", name="Send again").click()
    expect(tech.locator(".entry", has_text="Journey: wrote it up")).to_contain_text("Pending")
    expect(tech.locator(".entry", has_text="Journey: wrote it up")).to_contain_text("Not billable")

    senior.reload()
    htmx_settled(senior)
    senior.get_by_role("row", name=re.compile("Journey: wrote it up")).get_by_role("checkbox").check()
    htmx_settled(senior)
    senior.get_by_role("button", name="Approve selected").click()
    expect(senior.get_by_text("1 entry approved.")).to_be_visible()

    after = before + Decimal("4.00")  # 2 + 1.25 + 0.75, all approved in the end
    assert _approved_hours(live_app) == after
    tech.get_by_role("link", name=TICKET).first.click()
    expect(tech.locator("#time-title + p")).to_contain_text(f"{after.normalize():f} h approved")
    assert page_problems.all(expected_status=None) == []
