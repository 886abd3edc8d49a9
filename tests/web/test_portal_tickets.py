"""The customer portal's ticket pages: the list, opening a ticket with attachments, replying,
rating, downloading files; whole pages and htmx fragments, errors beside the field."""

from __future__ import annotations

import gc
import io
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from portal.models import SupportTicket, TicketAttachment, TicketComment, TicketStatus
from tests import factories as f
from tests.conftest import count_queries
from tests.services.test_portal_tickets import PNG

HTMX = {"HX-Request": "true"}


@pytest.fixture
def company(session):
    customer = f.make_customer(session)
    f.make_contract(session, customer=customer)
    me = f.make_contact_login(session, customer=customer, first_name="Maya", last_name="Ortiz")
    return customer, me


def files(*items):
    return {"attachments": [(io.BytesIO(data), name) for name, data in items]}


def test_the_list_is_a_page_and_a_fragment_with_the_filters_in_links(browser, session, company):
    customer, me = company
    for n in range(25):
        f.make_ticket(session, customer=customer, contact_id=me.contact_id, title=f"Laptop {n} will not boot")
    browser.sign_in(me.email)
    page = browser.get("/portal/tickets?q=laptop").get_data(as_text=True)
    assert "<h1>Your tickets</h1>" in page and 'id="ticket-q"' in page and "Page 1 of 2" in page
    assert 'href="/portal/tickets?q=laptop&amp;page=2"' in page
    fragment = browser.get("/portal/tickets?q=laptop&page=2", headers=HTMX).get_data(as_text=True)
    assert fragment.lstrip().startswith('<section id="ticket-results"') and "<h1>" not in fragment
    assert "Page 2 of 2" in fragment
    empty = browser.get("/portal/tickets?q=zzzqqq").get_data(as_text=True)
    assert "No ticket matches" in empty


def test_the_list_runs_the_same_queries_for_3_and_60_tickets(browser, session, company):
    customer, me = company
    boss = f.make_contact_login(session, customer=customer, is_primary_contact=True)
    for _ in range(3):
        f.make_ticket(session, customer=customer, contact_id=me.contact_id)
    browser.sign_in(boss.email)

    def load():
        for url in ("/portal/tickets", "/portal/"):
            assert browser.client.get(url).status_code == 200

    load()
    few = count_queries(session, load)
    for _ in range(57):
        f.make_ticket(session, customer=customer, contact_id=me.contact_id)
    assert count_queries(session, load) == few


def test_opening_a_ticket_with_an_attachment(browser, session, company, outbox):
    customer, me = company
    browser.sign_in(me.email)
    browser.get("/portal/tickets/new")
    response = browser.post("/portal/tickets/new", {
        "title": "Scanner shows an error", "description": "Error E42 since Monday.", "category": "hardware",
        "priority": "high", **files(("screen.png", PNG))}, content_type="multipart/form-data")
    assert response.status_code == 303
    ticket = session.scalar(sa.select(SupportTicket).where(SupportTicket.title == "Scanner shows an error"))
    assert response.headers["Location"] == f"/portal/tickets/{ticket.ticket_id}"
    assert (ticket.contact_id, ticket.customer_id, ticket.status) == (me.contact_id, customer.customer_id, TicketStatus.OPEN)
    assert ticket.contract_id is not None and ticket.response_due_at is not None
    [row] = session.scalars(sa.select(TicketAttachment).where(TicketAttachment.ticket_id == ticket.ticket_id)).all()
    assert (row.file_name, row.content_type, row.uploaded_by_contact_id) == ("screen.png", "image/png", me.contact_id)
    page = browser.get(response.headers["Location"]).get_data(as_text=True)
    assert f"Ticket {ticket.ticket_number} is open" in page and "screen.png" in page

    download = browser.client.get(f"/portal/tickets/{ticket.ticket_id}/attachments/{row.attachment_id}")
    assert download.status_code == 200 and download.data == PNG
    assert download.headers["Content-Disposition"] == "attachment; filename=screen.png"
    assert download.headers["X-Content-Type-Options"] == "nosniff" and download.mimetype == "image/png"


def test_a_mistake_keeps_what_was_typed_and_says_what_is_wrong_beside_the_field(browser, session, company):
    customer, me = company
    browser.sign_in(me.email)
    browser.get("/portal/tickets/new")
    before = session.scalar(sa.select(sa.func.count()).select_from(SupportTicket))
    response = browser.post("/portal/tickets/new", {"title": "  ", "description": "Kept text", "category": "nonsense"})
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert 'id="title-error" role="alert">Enter the title.' in page
    assert 'id="category-error" role="alert">Choose a category from the list.' in page
    assert "Kept text</textarea>" in page
    assert "Choose your files again" not in page  # no file was chosen
    assert session.scalar(sa.select(sa.func.count()).select_from(SupportTicket)) == before


@pytest.mark.parametrize("name, data, message", [
    ("hack.svg", b"<svg onload=alert(1)>", "this kind of file cannot be attached"),
    ("photo.png", b"MZ not really a png", "is not a real .png file"),
    ("big.log", b"x" * (10 * 1024 * 1024 + 1), "is larger than 10 MB"),
])
def test_a_refused_attachment_opens_no_ticket(browser, session, company, name, data, message):
    customer, me = company
    browser.sign_in(me.email)
    browser.get("/portal/tickets/new")
    before = session.scalar(sa.select(sa.func.count()).select_from(SupportTicket))
    number = session.scalar(sa.text("SELECT last_value FROM ticket_number_seq"))
    response = browser.post("/portal/tickets/new", {"title": "Good title", "description": "Good text",
                                                    "category": "software", **files((name, data))},
                            content_type="multipart/form-data")
    page = response.get_data(as_text=True)
    assert response.status_code == 422 and 'id="attachments-error" role="alert">' in page and message in page
    assert 'value="Good title"' in page
    assert session.scalar(sa.select(sa.func.count()).select_from(SupportTicket)) == before
    assert session.scalar(sa.select(sa.func.count()).select_from(TicketAttachment)) == 0
    assert session.scalar(sa.text("SELECT last_value FROM ticket_number_seq")) == number  # no number used up


# Werkzeug stops reading at the limit and leaves its spooled temporary file to the garbage
# collector: collect it here, inside this test, where that warning is expected.
@pytest.mark.filterwarnings("ignore::ResourceWarning", "ignore::pytest.PytestUnraisableExceptionWarning")
def test_an_upload_over_the_request_limit_is_a_clear_413(browser, session, company):
    customer, me = company
    browser.sign_in(me.email)
    browser.get("/portal/tickets/new")
    response = browser.post("/portal/tickets/new", {"title": "t", "description": "d", "category": "software",
                                                    **files(("huge.log", b"x" * (52 * 1024 * 1024)))},
                            content_type="multipart/form-data")
    page = response.get_data(as_text=True)
    assert response.status_code == 413
    # The form again, the reason beside its file field (the body was never read: nothing to keep).
    assert '<h1>Ask for help</h1>' in page and 'id="attachments"' in page
    assert 'aria-describedby="attachments-hint attachments-error" aria-invalid="true"' in page
    assert ('<p class="field__error" id="attachments-error" role="alert">The files were too large to send: '
            'attach at most 5 files of 10 MB each. Nothing arrived, so enter the ticket again') in page
    del response
    gc.collect()


@pytest.mark.filterwarnings("ignore::ResourceWarning", "ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_reply_over_the_request_limit_answers_the_ticket_with_the_reason_beside_the_files(browser, session,
                                                                                            company):
    customer, me = company
    ticket = f.make_ticket(session, customer=customer, contact_id=me.contact_id, title="Scanner jams")
    other = f.make_ticket(session, title="Someone else's ticket")
    browser.sign_in(me.email)
    browser.get(f"/portal/tickets/{ticket.ticket_id}")
    huge = lambda: files(("huge.log", b"x" * (52 * 1024 * 1024)))  # noqa: E731 (a stream is read once)
    response = browser.post(f"/portal/tickets/{ticket.ticket_id}/replies", {"body": "see log", **huge()},
                            content_type="multipart/form-data")
    page = response.get_data(as_text=True)
    assert response.status_code == 413 and "<h1>Scanner jams</h1>" in page
    assert 'id="attachments-error" role="alert">The files were too large to send' in page
    assert "write the reply again" in page
    del response
    # Another customer's ticket: the plain 413 page, nothing of that ticket.
    response = browser.post(f"/portal/tickets/{other.ticket_id}/replies", {"body": "x", **huge()},
                            content_type="multipart/form-data")
    assert response.status_code == 413 and "Someone else" not in response.get_data(as_text=True)
    del response
    gc.collect()


@pytest.mark.filterwarnings("ignore::ResourceWarning", "ignore::pytest.PytestUnraisableExceptionWarning")
def test_staff_over_the_upload_limit_get_the_plain_413_page(browser, session):
    tech = f.make_staff(session)
    browser.sign_in(tech.email)
    response = browser.post("/portal/tickets/new", {"title": "t", **files(("huge.log", b"x" * (52 * 1024 * 1024)))},
                            content_type="multipart/form-data")
    assert response.status_code == 413 and "Ask for help" not in response.get_data(as_text=True)
    del response
    gc.collect()


def test_only_the_upload_pages_take_large_requests(browser, session, company):
    customer, me = company
    browser.sign_in(me.email)
    big = {"phone": "1" * (2 * 1024 * 1024)}
    assert browser.post("/portal/profile", big).status_code == 413  # 2 MB: far more than any form needs


def test_a_reply_appears_in_place_and_reopens_a_resolved_ticket(browser, session, company):
    customer, me = company
    ticket = f.make_ticket(session, customer=customer, contact_id=me.contact_id, status="resolved",
                           resolved_at=datetime.now(UTC), first_response_at=datetime.now(UTC))
    browser.sign_in(me.email)
    browser.get(f"/portal/tickets/{ticket.ticket_id}")
    response = browser.post(f"/portal/tickets/{ticket.ticket_id}/replies",
                            {"body": "It broke again this morning.", **files(("again.log", b"E42 again\n"))},
                            headers=HTMX, content_type="multipart/form-data")
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and body.lstrip().startswith('<div id="ticket-main">')
    assert "It broke again this morning." in body and "again.log" in body and "Reply sent" in response.headers["HX-Trigger"]
    session.expire_all()
    assert session.get(SupportTicket, ticket.ticket_id).status == TicketStatus.IN_PROGRESS

    plain = browser.post(f"/portal/tickets/{ticket.ticket_id}/replies", {"body": "And a plain form."})
    assert plain.status_code == 303 and plain.headers["Location"] == f"/portal/tickets/{ticket.ticket_id}"
    empty = browser.post(f"/portal/tickets/{ticket.ticket_id}/replies", {"body": "   "}, headers=HTMX)
    assert empty.status_code == 422
    assert 'id="reply-body-error" role="alert">Enter the message.' in empty.get_data(as_text=True)


def test_the_conversation_never_shows_internal_notes_or_their_files(browser, session, company):
    customer, me = company
    ticket = f.make_ticket(session, customer=customer, contact_id=me.contact_id, status="in_progress")
    tech = f.make_employee(session)
    note = TicketComment(ticket_id=ticket.ticket_id, author_employee_id=tech.employee_id, body="INTERNAL-ONLY",
                         is_internal=True)
    session.add(note)
    session.flush()
    hidden = f.make_attachment(session, ticket, employee=tech, comment=note, file_name="secret-config.txt")
    browser.sign_in(me.email)
    page = browser.get(f"/portal/tickets/{ticket.ticket_id}").get_data(as_text=True)
    assert "INTERNAL-ONLY" not in page and "secret-config.txt" not in page
    assert browser.client.get(f"/portal/tickets/{ticket.ticket_id}/attachments/{hidden.attachment_id}").status_code == 404


def test_rating_once_in_place(browser, session, company):
    customer, me = company
    ticket = f.make_ticket(session, customer=customer, contact_id=me.contact_id, status="resolved",
                           resolved_at=datetime.now(UTC) - timedelta(hours=1), first_response_at=datetime.now(UTC))
    browser.sign_in(me.email)
    page = browser.get(f"/portal/tickets/{ticket.ticket_id}").get_data(as_text=True)
    assert "How did we do?" in page
    missing = browser.post(f"/portal/tickets/{ticket.ticket_id}/rating", {}, headers=HTMX)
    assert missing.status_code == 422 and 'id="rating-error" role="alert">Choose a rating from 1 to 5.' in missing.get_data(
        as_text=True)
    rated = browser.post(f"/portal/tickets/{ticket.ticket_id}/rating",
                         {"customer_satisfaction": "5", "satisfaction_comment": "Fast!"}, headers=HTMX)
    assert rated.status_code == 200 and "You rated this ticket 5 out of 5. Thank you!" in rated.get_data(as_text=True)
    assert "How did we do?" not in rated.get_data(as_text=True)
    again = browser.post(f"/portal/tickets/{ticket.ticket_id}/rating", {"customer_satisfaction": "1"})
    assert again.status_code == 403
    session.expire_all()
    assert session.get(SupportTicket, ticket.ticket_id).customer_satisfaction == 5


def test_staff_see_and_download_every_attachment_and_their_public_reply_emails_the_contact(
        browser, session, company, outbox):
    customer, me = company
    ticket = f.make_ticket(session, customer=customer, contact_id=me.contact_id, status="in_progress")
    row = f.make_attachment(session, ticket, contact=me, file_name="printer.log")
    senior = f.make_staff(session, role="senior_technician")
    browser.sign_in(senior.email)
    page = browser.get(f"/staff/tickets/{ticket.ticket_id}").get_data(as_text=True)
    assert "printer.log" in page
    download = browser.client.get(f"/staff/tickets/{ticket.ticket_id}/attachments/{row.attachment_id}")
    assert download.status_code == 200 and download.headers["Content-Disposition"] == "attachment; filename=printer.log"
    browser.post(f"/staff/tickets/{ticket.ticket_id}/comments", {"body": "Internal thought", "internal": "1"})
    assert outbox == []
    browser.post(f"/staff/tickets/{ticket.ticket_id}/comments", {"body": "Try the new driver.", "internal": "0"})
    [mail] = outbox
    assert mail.to == me.email and "Try the new driver." in mail.body
    assert f"/portal/tickets/{ticket.ticket_id}" in mail.body and "Internal thought" not in mail.body


def test_a_contact_who_may_not_open_tickets_gets_no_button_and_a_403(browser, session, company):
    customer, _ = company
    reader = f.make_contact_login(session, customer=customer, can_create_tickets=False)
    browser.sign_in(reader.email)
    assert "Ask for help" not in browser.get("/portal/tickets").get_data(as_text=True)
    assert browser.client.get("/portal/tickets/new").status_code == 403


def test_a_history_restore_gets_the_whole_page(browser, session, company):
    """htmx re-fetches a page missing from its history cache; that answer replaces the whole body."""
    customer, me = company
    browser.sign_in(me.email)
    page = browser.get("/portal/tickets?status=all", headers={**HTMX, "HX-History-Restore-Request": "true"})
    assert "<h1>Your tickets</h1>" in page.get_data(as_text=True) and 'id="ticket-filters"' in page.get_data(as_text=True)


def test_the_ticket_page_says_who_works_on_it(browser, session, company):
    customer, me = company
    tech = f.make_staff(session, first_name="Amanda", last_name="Lee")
    waiting = f.make_ticket(session, customer=customer, contact_id=me.contact_id, title="Nobody yet")
    taken = f.make_ticket(session, customer=customer, contact_id=me.contact_id, title="Taken",
                          status="assigned", assigned_employee_id=tech.employee_id,
                          assigned_at=datetime.now(UTC))
    browser.sign_in(me.email)
    page = browser.get(f"/portal/tickets/{waiting.ticket_id}").get_data(as_text=True)
    assert '<dt>Technician</dt><dd><span class="muted">Not yet assigned</span></dd>' in page
    page = browser.get(f"/portal/tickets/{taken.ticket_id}").get_data(as_text=True)
    assert "<dt>Technician</dt><dd>Amanda Lee</dd>" in page and tech.email not in page
