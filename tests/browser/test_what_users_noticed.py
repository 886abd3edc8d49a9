"""What users noticed in the portal (issue 10), each tried again as they tried it: in Chromium, on
the demo data, at the width they used."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from tests import commands

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
    page.screenshot(path=tmp_path / "waiting.png", full_page=True, caret="initial")
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
    page.screenshot(path=tmp_path / "queue-desktop.png", full_page=True, caret="initial")


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
    page.screenshot(path=tmp_path / "queue-phone.png", full_page=True, caret="initial")


# --- messages beside the field, kept until fixed -------------------------------------------------

BIG = 10 * 1024 * 1024 + 1


def test_a_file_over_10_mb_is_refused_beside_the_field_and_the_ticket_stays_typed(new_page, page_problems, live_app):
    page = new_page()
    sign_in(page, "mike.chen@denvertech.com")
    page.goto("/portal/tickets/new")
    page.get_by_label("Title").fill("Scanner saves blank PDFs")
    page.get_by_label("What happens?").fill("Every scan since Monday is an empty page.")
    page.get_by_label("Category").select_option("hardware")
    files = page.get_by_label("Attachments")
    files.set_input_files([{"name": "scan.pdf", "mimeType": "application/pdf", "buffer": b"%PDF-1.4\n" + b"0" * BIG}])
    error = page.locator("#attachments-error")
    expect(error).to_have_text(re.compile(r"scan\.pdf is larger than 10 MB"))
    expect(error).to_have_attribute("role", "alert")
    expect(files).to_have_attribute("aria-invalid", "true")
    expect(files).to_have_attribute("aria-describedby", re.compile(r"\battachments-error\b"))
    page.wait_for_timeout(6000)  # longer than a toast lives: the message is still there
    expect(error).to_be_visible()

    page.get_by_role("button", name="Send to TechServ").click()
    expect(page).to_have_url(re.compile(r"/portal/tickets/new$"))  # not sent: nothing typed is lost
    expect(page.get_by_label("Title")).to_have_value("Scanner saves blank PDFs")
    expect(page.get_by_label("What happens?")).to_have_value("Every scan since Monday is an empty page.")
    expect(error).to_be_visible()
    expect(files).to_be_focused()

    page.get_by_role("button", name="Remove the chosen files").click()
    expect(error).to_have_count(0)
    expect(files).not_to_have_attribute("aria-invalid", "true")
    page.get_by_role("button", name="Send to TechServ").click()
    expect(page.get_by_role("heading", name="Scanner saves blank PDFs")).to_be_visible()
    assert page_problems.all() == []


def test_a_reply_with_too_big_a_file_keeps_its_text(new_page, page_problems, live_app):
    ticket_id = _ticket_in_progress(live_app, "Teams camera shows a black picture")
    page = new_page("phone")
    sign_in(page, "mike.chen@denvertech.com")
    page.goto(f"/portal/tickets/{ticket_id}")
    htmx_settled(page)
    page.get_by_label("Your reply").fill("Here is the log you asked for.")
    page.get_by_label("Attachments").set_input_files(
        [{"name": "camera.log", "mimeType": "text/plain", "buffer": b"x" * BIG}])
    page.get_by_role("button", name="Send reply").click()
    expect(page.locator("#attachments-error")).to_contain_text("camera.log is larger than 10 MB")
    expect(page.get_by_label("Your reply")).to_have_value("Here is the log you asked for.")
    expect(page.locator(".comment", has_text="Here is the log")).to_have_count(0)
    assert page_problems.all() == []


def test_a_sponsor_s_rejection_without_a_reason_is_answered_beside_the_field(new_page, page_problems, live_app):
    from portal.extensions import db
    from portal.models import Project
    from portal.services import projects

    with live_app.app_context():  # a phase of its own, sent for Denver's sponsor's approval
        project = db.session.scalar(sa.select(Project).where(Project.customer_id == 1).order_by(Project.project_id))
        manager = _principal("priya.natarajan@techserv.com")
        day = datetime.now(UTC).date().isoformat()
        phase = projects.add_phase(db.session, manager, project, commands.phase_plan(
            phase_name="Printer fleet audit", deliverables="A list of every printer.", budget_allocation="100.00",
            start_date=day, end_date=day, requires_approval=True))
        projects.request_phase_approval(db.session, manager, phase, now=datetime.now(UTC))
        db.session.commit()
        project_id, phase_id = project.project_id, phase.phase_id
        db.session.remove()
    page = new_page()
    sign_in(page, "sarah.johnson@denvertech.com")
    page.goto(f"/portal/projects/{project_id}#phase-{phase_id}")
    htmx_settled(page)
    card = page.locator(f"#phase-{phase_id}")
    card.get_by_text("Reject…").click()
    card.get_by_role("button", name="Reject phase").click()
    reason = page.locator(f"#reason-{phase_id}")
    error = page.locator(f"#reason-{phase_id}-error")
    expect(error).to_have_text(re.compile("Say why you reject the phase"))
    expect(error).to_have_attribute("role", "alert")
    expect(reason).to_have_attribute("aria-describedby", re.compile(rf"\breason-{phase_id}-error\b"))
    expect(reason).to_be_focused()
    page.wait_for_timeout(6000)
    expect(error).to_be_visible()
    expect(page.locator("#toasts .toast")).to_have_count(0)
    reason.fill("The audit is part of the managed contract already.")
    card.get_by_role("button", name="Reject phase").click()
    expect(page.locator(f"#phase-{phase_id}")).to_contain_text("Rejected")
    assert [p for p in page_problems.all() if "status of 422" not in p] == []


def test_a_time_rejection_without_a_reason_is_answered_beside_the_field(new_page, page_problems, live_app):
    from portal.extensions import db
    from portal.services.timesheets import log_time

    ticket_id = _ticket_in_progress(live_app, "Docking station drops the second screen")
    with live_app.app_context():
        amanda = _principal(TECHNICIAN)
        log_time(db.session, amanda, commands.time_entry(
            work_date=datetime.now(UTC).date().isoformat(), hours="0.5", start_time="", end_time="",
            work_category="support", is_billable=True, description="Swapped the USB-C cable", ticket_id=ticket_id),
            now=datetime.now(UTC))
        db.session.commit()
        db.session.remove()
    page = new_page()
    sign_in(page, SENIOR)
    page.goto("/staff/approvals")
    htmx_settled(page)
    row = page.get_by_role("row", name=re.compile("Swapped the USB-C cable"))
    row.get_by_role("checkbox").check()
    page.get_by_role("button", name="Reject selected").click()
    reason = page.get_by_label("Reason to reject")
    error = page.locator("#reject-reason-error")
    expect(error).to_have_text(re.compile("Say why the time is rejected"))
    expect(reason).to_have_attribute("aria-describedby", "reject-reason-error")
    expect(page.get_by_role("row", name=re.compile("Swapped the USB-C cable")).get_by_role("checkbox")).to_be_checked()
    expect(reason).to_be_focused()
    page.wait_for_timeout(6000)
    expect(error).to_be_visible()
    expect(page.locator("#toasts .toast")).to_have_count(0)  # no toast saying it again over the field
    htmx_settled(page)
    reason.fill("Log it on the docking-station project")
    page.get_by_role("button", name="Reject selected").click()
    expect(page.get_by_text("1 entry rejected.")).to_be_visible()
    assert [p for p in page_problems.all() if "status of 422" not in p] == []


# --- deleting time asks first ---------------------------------------------------------------------

def _log_for(live_app, email: str, ticket_id: int, what: str, hours: str = "0.75") -> None:
    from portal.extensions import db
    from portal.services.timesheets import log_time

    with live_app.app_context():
        log_time(db.session, _principal(email), commands.time_entry(
            work_date=datetime.now(UTC).date().isoformat(), hours=hours, start_time="", end_time="",
            work_category="support", is_billable=True, description=what, ticket_id=ticket_id), now=datetime.now(UTC))
        db.session.commit()
        db.session.remove()


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_deleting_a_time_entry_asks_first_and_can_be_kept(new_page, page_problems, live_app, size, tmp_path):
    ticket_id = _ticket_in_progress(live_app, f"Shared mailbox missing in Outlook ({size})")
    what = f"Re-added the shared mailbox ({size})"
    _log_for(live_app, TECHNICIAN, ticket_id, what)
    page = new_page(size)
    sign_in(page, TECHNICIAN)
    page.goto("/staff/timesheet")
    htmx_settled(page)
    entry = page.locator(".entry", has_text=what)

    # One click asks, it does not delete; "No" keeps the entry and gives the focus back.
    entry.get_by_text("Delete…").click()
    expect(entry.get_by_text("Delete this entry of 0.75 h? It cannot be undone.")).to_be_visible()
    entry.get_by_role("link", name="No, keep it").click()
    expect(entry.get_by_role("button", name="Yes, delete")).to_be_hidden()
    expect(entry.locator("summary")).to_be_focused()
    expect(page.locator(".entry", has_text=what)).to_have_count(1)

    # By keyboard: open, Escape closes; open again, Tab to "Yes, delete", Enter deletes.
    page.keyboard.press("Enter")
    expect(entry.get_by_role("button", name="Yes, delete")).to_be_visible()
    page.keyboard.press("Escape")
    expect(entry.get_by_role("button", name="Yes, delete")).to_be_hidden()
    expect(entry.locator("summary")).to_be_focused()
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    expect(entry.get_by_role("button", name="Yes, delete")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_text("Entry deleted.")).to_be_visible()
    expect(page.locator(".entry", has_text=what)).to_have_count(0)
    assert page_problems.all() == []
    if page.locator(".entry details.confirm").count():
        page.locator(".entry details.confirm summary").first.click()
    page.screenshot(path=tmp_path / f"delete-question-{size}.png", full_page=True, caret="initial")


# --- the smaller things -----------------------------------------------------------------------------

def test_at_most_two_toasts_newest_first(new_page, page_problems, live_app):
    ticket_id = _ticket_in_progress(live_app, "Printer driver prompts for admin rights")
    page = new_page()
    sign_in(page, TECHNICIAN)
    page.goto(f"/staff/tickets/{ticket_id}")
    for note in ("First look: driver package is unsigned.", "Second look: the GPO blocks it."):
        htmx_settled(page)
        page.get_by_label("Write a reply or an internal note").fill(note)
        page.get_by_role("button", name="Add internal note").click()
        expect(page.locator(".comment--internal", has_text=note)).to_be_visible()
    htmx_settled(page)
    page.get_by_label("Priority").select_option("high")
    page.get_by_role("button", name="Save").click()
    toasts = page.locator("#toasts .toast:not(.toast--leaving)")
    expect(toasts.first).to_contain_text("Details saved.")  # the newest on top
    expect(toasts).to_have_count(2)
    assert page_problems.all() == []


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_after_a_wrong_password_the_cursor_is_in_the_password(new_page, size):
    page = new_page(size)
    page.goto("/login")
    expect(page.get_by_role("textbox", name="Email", exact=True)).to_be_focused()
    page.get_by_role("textbox", name="Email", exact=True).fill("karen.holt@denvertech.com")
    page.get_by_role("textbox", name="Password", exact=True).fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("The email or password is wrong.")
    expect(page.get_by_role("textbox", name="Email", exact=True)).to_have_value("karen.holt@denvertech.com")
    expect(page.get_by_role("textbox", name="Password", exact=True)).to_be_focused()


def test_the_customer_sees_who_works_on_the_ticket(new_page, live_app):
    taken = _ticket_in_progress(live_app, "Wireless mouse lags in Excel")
    from portal.extensions import db
    from portal.services import tickets

    with live_app.app_context():
        ticket = tickets.open_ticket(db.session, _principal("mike.chen@denvertech.com"), tickets.NewTicket(
            title="New starter needs a laptop", description="Starts Monday.", category="hardware"),
            now=datetime.now(UTC))
        db.session.commit()
        fresh = ticket.ticket_id
        db.session.remove()
    page = new_page("phone")
    sign_in(page, "mike.chen@denvertech.com")
    page.goto(f"/portal/tickets/{taken}")
    expect(page.locator(".facts", has_text="Technician")).to_contain_text("Amanda Lee")
    page.goto(f"/portal/tickets/{fresh}")
    expect(page.locator(".facts", has_text="Technician")).to_contain_text("Not yet assigned")


def test_percentages_stay_whole_and_decisions_show_their_time(new_page, live_app, tmp_path):
    page = new_page("phone")
    sign_in(page, "sarah.johnson@denvertech.com")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Projects").click()
    page.get_by_role("link", name="Microsoft 365 tenant migration").click()
    for label in ("Budget used", "Completion"):
        value = page.locator(".stat", has_text=label).locator(".percent")
        expect(value).to_have_text(re.compile(r"^\d+ %$"))
        box = value.bounding_box()
        assert box and box["height"] < 40, f"{label}: the percentage wrapped ({box})"
    approved = page.locator(".decision--approved time").first
    expect(approved).to_have_text(re.compile(r"^\d{1,2} \w{3} \d{4}, \d{2}:\d{2} M[SD]T$"))
    page.screenshot(path=tmp_path / "project-phone.png", full_page=True, caret="initial")

    staff = new_page()
    sign_in(staff, "carlos.martinez@techserv.com")
    staff.get_by_role("link", name="Projects").click()
    staff.get_by_role("link", name="Microsoft 365 tenant migration").click()
    expect(staff.get_by_text(re.compile(r"Approved by .+ on \d{1,2} \w{3} \d{4}, \d{2}:\d{2} M[SD]T"))).to_be_visible()
