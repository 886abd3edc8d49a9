"""A contact asks for help with a screenshot, finds the ticket by typing, answers TechServ's
question without a reload, and rates the work once it is resolved. Real Chromium, real server,
at desktop and phone sizes."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from portal.extensions import db
from portal.models import Account, SupportTicket
from portal.services import auth, tickets
from tests.browser.conftest import DOWNLOAD_TIMEOUT_MS, htmx_settled, sign_in
from tests.services.test_portal_tickets import PNG

CONTACTS = {"desktop": "mike.chen@denvertech.com", "phone": "jennifer@mvdental.com"}


def _as_senior(live_app, title: str, action) -> None:
    """What the technician does meanwhile (the staff pages have journeys of their own)."""
    with live_app.app_context():
        account_id = db.session.scalar(sa.select(Account.account_id).where(Account.email == "john.davis@techserv.com"))
        senior = auth.principal_for(db.session, account_id)
        ticket = db.session.scalar(sa.select(SupportTicket).where(SupportTicket.title == title))
        action(senior, ticket, datetime.now(UTC))
        db.session.commit()
        db.session.remove()


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_a_contact_opens_follows_and_rates_a_ticket(new_page, page_problems, live_app, outbox, tmp_path, size):
    title = f"Label printer prints blank labels ({size})"
    screenshot = tmp_path / "label-printer.png"
    screenshot.write_bytes(PNG)
    page = new_page(size)
    sign_in(page, CONTACTS[size])
    page.get_by_role("link", name="Ask for help").first.click()
    page.get_by_label("Title").fill(title)
    page.get_by_label("What happens?").fill("Since the driver update every label comes out blank.")
    page.get_by_label("Category").select_option("hardware")
    page.get_by_label("Priority").select_option("high")
    page.get_by_label("Attachments").set_input_files(str(screenshot))
    page.screenshot(path=f"/tmp/portal-new-ticket-{size}.png", full_page=True)
    page.get_by_role("button", name="Send to TechServ").click()

    expect(page.get_by_role("heading", name=title)).to_be_visible()
    expect(page.get_by_text(re.compile(r"Ticket TKT-\d{4}-\d{6} is open"))).to_be_visible()
    expect(page.get_by_role("link", name="label-printer.png")).to_be_visible()
    with page.expect_download(timeout=DOWNLOAD_TIMEOUT_MS) as download:
        page.get_by_role("link", name="label-printer.png").click()
    assert download.value.suggested_filename == "label-printer.png"

    # TechServ asks a question; the contact finds the ticket by typing part of its title.
    _as_senior(live_app, title, lambda senior, ticket, now: (
        tickets.change_status(db.session, senior, ticket, "in_progress", expected_version=None, now=now),
        tickets.change_status(db.session, senior, ticket, "waiting_customer", expected_version=None, now=now,
                              message="Which printer model is it?")))
    assert any("Which printer model is it?" in mail.body for mail in outbox)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Tickets").click()
    htmx_settled(page)
    page.evaluate("window.__sameDocument = true")
    page.get_by_label("Search").press_sequentially("label print", delay=30)
    expect(page).to_have_url(re.compile(r"q=label(%20|\+)print"))
    row = page.locator("#ticket-results tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Waiting for you")
    assert page.evaluate("window.__sameDocument") is True
    row.get_by_role("link", name=title).click()

    expect(page.get_by_text("We are waiting for your answer")).to_be_visible()
    htmx_settled(page)
    page.evaluate("window.__sameDocument = true")
    page.get_by_label("Your reply").fill("It is a Zebra ZD421.")
    page.get_by_role("button", name="Send reply").click()
    expect(page.locator(".comment", has_text="It is a Zebra ZD421.")).to_be_visible()
    expect(page.get_by_text("Reply sent.")).to_be_visible()
    expect(page.locator(".page-header")).to_contain_text("In progress")
    assert page.evaluate("window.__sameDocument") is True

    _as_senior(live_app, title, lambda senior, ticket, now: tickets.change_status(
        db.session, senior, ticket, "resolved", expected_version=None, now=now,
        resolution_notes="Rolled the driver back to 10.2 and set the label size again."))
    page.reload()
    expect(page.get_by_text("Rolled the driver back to 10.2")).to_be_visible()
    htmx_settled(page)
    page.get_by_label("5", exact=True).check()
    page.get_by_label("Comment").fill("Quick fix, thanks.")
    page.get_by_role("button", name="Send rating").click()
    expect(page.get_by_text("You rated this ticket 5 out of 5")).to_be_visible()
    page.screenshot(path=f"/tmp/portal-ticket-{size}.png", full_page=True)
    assert page_problems.all(expected_status=None) == []
