"""What users noticed in the portal (issue 10), each tried again as they tried it: in Chromium, on
the demo data, at the width they used."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from tests.browser.conftest import DESKTOP, PHONE, htmx_settled, sign_in

SENIOR = "john.davis@techserv.com"
TECHNICIAN = "amanda.lee@techserv.com"


def _principal(email: str):
    from portal.extensions import db
    from portal.models import Account
    from portal.services import auth

    account_id = db.session.scalar(sa.select(Account.account_id).where(Account.email == email))
    return auth.principal_for(db.session, account_id)


def _ticket_in_progress(live_app, title: str, technician: str = TECHNICIAN) -> int:
    """A new ticket of Denver Tech, assigned to `technician` and in progress, with no reply yet."""
    from portal.extensions import db
    from portal.services import tickets

    with live_app.app_context():
        now = datetime.now(UTC)
        ticket = tickets.open_ticket(db.session, _principal("mike.chen@denvertech.com"), tickets.NewTicket(
            title=title, description="It started this morning.", category="software", priority="medium"), now=now)
        tickets.change_status(db.session, _principal(technician), ticket, "in_progress", expected_version=None,
                              now=now)
        db.session.commit()
        ticket_id = ticket.ticket_id
        db.session.remove()
    return ticket_id


# --- waiting for the customer, and the history in words -------------------------------------------

def test_waiting_for_the_customer_asks_what_is_awaited_and_answers_with_a_reply(new_page, page_problems, live_app,
                                                                                 outbox, tmp_path):
    ticket_id = _ticket_in_progress(live_app, "Outlook asks for the password again and again")
    page = new_page()
    sign_in(page, TECHNICIAN)
    page.goto(f"/staff/tickets/{ticket_id}")
    expect(page.get_by_text("No replies yet.")).to_be_visible()
    htmx_settled(page)
    page.get_by_role("button", name="Wait for customer").click()
    message = page.get_by_label("What do you need from the customer?")
    expect(page.locator("#wait-error")).to_have_text(re.compile("Write what you need from the customer"))
    expect(message).to_have_attribute("aria-invalid", "true")
    expect(page.locator(".ticket .page-header")).to_contain_text("In progress")
    expect(page.locator(".facts")).not_to_contain_text("answered")
    htmx_settled(page)
    page.get_by_label("What do you need from the customer?").fill("Does it happen on the phone too, or only on the PC?")
    page.get_by_role("button", name="Wait for customer").click()
    expect(page.locator(".ticket .page-header")).to_contain_text("Waiting customer")
    expect(page.locator(".comment", has_text="Does it happen on the phone too")).to_be_visible()
    expect(page.get_by_text("No replies yet.")).to_have_count(0)
    expect(page.locator(".facts")).to_contain_text("answered")
    assert any("Does it happen on the phone too" in mail.body for mail in outbox)

    history = page.locator(".history")
    expect(history).to_contain_text("In progress → Waiting for the customer")
    expect(history).to_contain_text("Replied to the customer")
    expect(history).not_to_contain_text("waiting_customer")
    expect(history).not_to_contain_text("employee id")
    page.screenshot(path=tmp_path / "waiting.png", full_page=True)
    # The refused move answered 422 on purpose.
    assert [p for p in page_problems.all() if "status of 422" not in p] == []


# --- the staff queue fits the screen ---------------------------------------------------------------

@pytest.mark.parametrize("email", [SENIOR, TECHNICIAN])
def test_the_queue_fits_a_desktop_without_a_box_of_its_own(new_page, email, tmp_path):
    page = new_page("desktop")
    sign_in(page, email)
    page.goto("/staff/tickets/")
    htmx_settled(page)
    sizes = page.evaluate("""() => {
        const box = document.querySelector('#queue-results .table-wrap');
        return {page: document.documentElement.scrollWidth, box: [box.scrollWidth, box.clientWidth,
                box.scrollHeight, box.clientHeight]};
    }""")
    assert sizes["page"] <= DESKTOP["width"], sizes
    scroll_width, client_width, scroll_height, client_height = sizes["box"]
    assert scroll_width <= client_width, f"the queue scrolls sideways at {DESKTOP['width']} px: {sizes}"
    assert scroll_height <= client_height, f"the queue scrolls inside its own box: {sizes}"
    page.screenshot(path=tmp_path / "queue-desktop.png", full_page=True)


@pytest.mark.parametrize("email", [SENIOR, TECHNICIAN])
def test_the_queue_is_a_card_per_ticket_on_a_phone(new_page, email, tmp_path):
    page = new_page("phone")
    sign_in(page, email)
    page.goto("/staff/tickets/")
    htmx_settled(page)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    row = page.locator("#queue-results tbody tr").first
    row.scroll_into_view_if_needed()
    for label in ("SLA", "Status", "Assigned to", "Priority"):
        cell = row.locator(f'td[data-label="{label}"]')
        expect(cell).to_be_in_viewport()
        box = cell.bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], (label, box)
        assert label in cell.evaluate("e => getComputedStyle(e, '::before').content"), label
    box = page.locator("#queue-results .table-wrap").evaluate("e => [e.scrollWidth, e.clientWidth]")
    assert box[0] <= box[1], box
    page.screenshot(path=tmp_path / "queue-phone.png", full_page=True)
