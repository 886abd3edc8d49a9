"""The customer portal's ticket rules (services/tickets.py, attachments.py, notifications.py):
the contact's list and search, attachments, the one-time rating and the emails, on the real
database, also inside the contact's row-level security."""

from __future__ import annotations

import io
import zipfile
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from portal.models import AuditEvent, SupportTicket, TicketAttachment, TicketComment, TicketStatus
from portal.services import attachments, tickets
from portal.services.errors import Forbidden, Invalid
from portal.services.tenancy import apply_contact_scope, clear_contact_scope
from portal.services.tickets import PortalTicketFilters
from tests import factories as f
from tests.conftest import ATTACHMENTS
from tests.services.test_tickets import principal, staff

S = TicketStatus
NOW = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
PNG = bytes.fromhex("89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d49444154789c63f8ffff"
                    "3f0005fe02fea7d6a4c00000000049454e44ae426082")
PDF = b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n"


def upload(name: str, data: bytes) -> attachments.Upload:
    return attachments.Upload(name, io.BytesIO(data))


def docx() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", "<w:document/>")
    return buffer.getvalue()


@pytest.fixture
def company(session):
    customer = f.make_customer(session)
    me = f.make_contact_login(session, customer=customer)
    colleague = f.make_contact_login(session, customer=customer)
    boss = f.make_contact_login(session, customer=customer, is_primary_contact=True)
    return customer, me, colleague, boss


# --- attachments ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name, data, content_type", [
    ("screen.png", PNG, "image/png"),
    ("invoice.PDF", PDF, "application/pdf"),
    ("error.log", b"2026-06-01 09:00 ERROR disk full\n", "text/plain"),
    ("export.csv", "name,city\nZoë,Denver\n".encode(), "text/csv"),
    ("report.docx", docx(), "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
    ("logs.zip", docx(), "application/zip"),
])
def test_files_on_the_list_with_matching_content_are_accepted(name, data, content_type):
    checked = attachments.check(upload(name, data))
    assert (checked.file_name, checked.content_type, checked.data) == (name, content_type, data)


@pytest.mark.parametrize("name, data, reason", [
    ("drawing.svg", b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>", "cannot be attached"),
    ("page.html", b"<html><script>alert(1)</script></html>", "cannot be attached"),
    ("page.htm", b"<p>hi</p>", "cannot be attached"),
    ("setup.exe", b"MZ\x90\x00", "cannot be attached"),
    ("noextension", b"hello", "cannot be attached"),
    ("photo.png", b"MZ\x90\x00\x03\x00\x00\x00 a program", "not a real .png"),
    ("notes.txt", b"<!DOCTYPE html><html><script>alert(1)</script>", "not a real .txt"),
    ("notes.txt", b"  <svg onload=alert(1)>", "not a real .txt"),
    ("binary.log", b"\x00\x01\x02\x03", "not a real .log"),
    ("report.pdf", PNG, "not a real .pdf"),
    ("empty.txt", b"", "is empty"),
])
def test_files_off_the_list_or_lying_about_their_content_are_refused(name, data, reason):
    with pytest.raises(Invalid) as refused:
        attachments.check(upload(name, data))
    assert reason in refused.value.message and refused.value.field == "attachments"


def test_a_file_over_10_mb_is_refused_with_its_name():
    with pytest.raises(Invalid, match=r"big\.log is larger than 10 MB"):
        attachments.check(upload("big.log", b"x" * (attachments.MAX_BYTES + 1)))
    assert attachments.check(upload("just.log", b"x" * attachments.MAX_BYTES)).data  # exactly 10 MB is fine


def test_at_most_five_files_at_once_and_empty_pickers_are_ignored():
    assert attachments.check_all([upload("", b"")]) == []
    with pytest.raises(Invalid, match="at most 5 files"):
        attachments.check_all([upload(f"{n}.txt", b"x") for n in range(6)])


@pytest.mark.parametrize("raw, clean", [
    ("../../etc/passwd.txt", "passwd.txt"),
    ("C:\\Users\\me\\report.pdf", "report.pdf"),
    ("evil\x00name\r\n.txt", "evilname.txt"),
    ("...", "attachment"),
    ("a" * 300 + ".log", "a" * 251 + ".log"),
])
def test_file_names_lose_paths_and_control_characters(raw, clean):
    assert attachments.clean_file_name(raw) == clean


def test_stored_files_have_random_names_outside_static_and_are_read_back(session, company, tmp_path):
    customer, me, *_ = company
    ticket = f.make_ticket(session, customer=customer, contact_id=me.contact_id)
    storage = attachments.Storage(tmp_path)
    [row] = attachments.attach(session, storage, principal(session, me), ticket,
                               [attachments.check(upload("screen.png", PNG))])
    assert row.file_name == "screen.png" and row.size_bytes == len(PNG) and len(row.storage_name) == 32
    assert storage.path(row.storage_name).read_bytes() == PNG
    assert row.storage_name not in str(storage.path(row.storage_name).parent)
    session.commit()  # committed: the file stays
    assert storage.path(row.storage_name).exists()


def test_files_of_a_transaction_that_rolls_back_are_deleted_whatever_failed(session, company, tmp_path):
    customer, me, *_ = company
    ticket = f.make_ticket(session, customer=customer, contact_id=me.contact_id)
    storage = attachments.Storage(tmp_path)
    [row] = attachments.attach(session, storage, principal(session, me), ticket,
                               [attachments.check(upload("screen.png", PNG))])
    path = storage.path(row.storage_name)
    with session.begin_nested():  # a savepoint that is released keeps the file
        pass
    assert path.exists()
    session.rollback()  # e.g. the commit failed: the database forgets the row, the disk the file
    assert not path.exists()
    # A row the database refuses (the flush fails) leaves no file either.
    customer = f.make_customer(session)  # the rollback took the earlier rows too
    me = f.make_contact_login(session, customer=customer)
    ticket = f.make_ticket(session, customer=customer, contact_id=me.contact_id)
    bad = attachments.CheckedFile("x" * 300, "text/plain", b"too long a name for the column")
    with pytest.raises(sa.exc.DBAPIError):
        attachments.attach(session, storage, principal(session, me), ticket, [bad])
    session.rollback()
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_attachments_of_internal_notes_are_for_staff_only(session, company):
    customer, me, *_ = company
    ticket = f.make_ticket(session, customer=customer, contact_id=me.contact_id)
    employee = f.make_employee(session)
    note = TicketComment(ticket_id=ticket.ticket_id, author_employee_id=employee.employee_id, body="x",
                         is_internal=True)
    session.add(note)
    session.flush()
    public = f.make_attachment(session, ticket, contact=me)
    internal = f.make_attachment(session, ticket, employee=employee, comment=note)
    assert attachments.ticket_attachments(session, ticket.ticket_id, include_internal=False) == [public]
    assert len(attachments.ticket_attachments(session, ticket.ticket_id, include_internal=True)) == 2
    with pytest.raises(Exception, match="No such file"):
        attachments.attachment_of(session, ticket, internal.attachment_id, include_internal=False)
    # And the database agrees, inside the contact's row-level security.
    apply_contact_scope(session, customer.customer_id, me.contact_id)
    try:
        seen = session.scalars(sa.select(TicketAttachment.attachment_id)).all()
    finally:
        clear_contact_scope(session)
    assert seen == [public.attachment_id]


def test_a_contact_attaches_files_inside_row_level_security(session, company):
    customer, me, *_ = company
    ticket = f.make_ticket(session, customer=customer, contact_id=me.contact_id)
    who = principal(session, me)
    apply_contact_scope(session, customer.customer_id, me.contact_id)
    try:
        comment = tickets.add_comment(session, who, ticket, "Here is the log.", now=NOW)
        rows = attachments.attach(session, attachments.Storage(ATTACHMENTS["root"]), who, ticket,
                                  [attachments.check(upload("error.log", b"boom\n"))], comment=comment)
    finally:
        clear_contact_scope(session)
    assert rows[0].uploaded_by_contact_id == me.contact_id and rows[0].comment_id == comment.comment_id


# --- the contact's ticket list -------------------------------------------------------------------

def test_a_contact_sees_own_tickets_and_a_primary_contact_the_companys(session, company):
    customer, me, colleague, boss = company
    mine = f.make_ticket(session, customer=customer, contact_id=me.contact_id)
    theirs = f.make_ticket(session, customer=customer, contact_id=colleague.contact_id)
    f.make_ticket(session)  # another customer's
    page = tickets.contact_tickets(session, principal(session, me), PortalTicketFilters(), now=NOW)
    assert [t.ticket_id for t, *_ in page.rows] == [mine.ticket_id] and page.colleagues == []
    page = tickets.contact_tickets(session, principal(session, boss), PortalTicketFilters(), now=NOW)
    assert {t.ticket_id for t, *_ in page.rows} == {mine.ticket_id, theirs.ticket_id}
    assert {name for _, name in page.colleagues} == {c.full_name for c in (me, colleague, boss)}
    by_colleague = tickets.contact_tickets(session, principal(session, boss),
                                           PortalTicketFilters(submitter=colleague.contact_id), now=NOW)
    assert [(t.ticket_id, name) for t, name, _ in by_colleague.rows] == [(theirs.ticket_id, colleague.full_name)]
    # A contact who is not primary cannot widen the list with the submitter filter.
    page = tickets.contact_tickets(session, principal(session, me),
                                   PortalTicketFilters(submitter=colleague.contact_id), now=NOW)
    assert [t.ticket_id for t, *_ in page.rows] == [mine.ticket_id]


def test_status_filter_and_pagination(session, company):
    customer, me, *_ = company
    for n in range(23):
        f.make_ticket(session, customer=customer, contact_id=me.contact_id, last_activity_at=NOW - timedelta(hours=n))
    done = f.make_ticket(session, customer=customer, contact_id=me.contact_id, status="resolved",
                         resolved_at=NOW, first_response_at=NOW)
    who = principal(session, me)
    first = tickets.contact_tickets(session, who, PortalTicketFilters(), now=NOW)
    assert (first.total, first.pages, len(first.rows)) == (23, 2, 20)
    second = tickets.contact_tickets(session, who, PortalTicketFilters(page=2), now=NOW)
    assert len(second.rows) == 3 and not {t.ticket_id for t, *_ in first.rows} & {t.ticket_id for t, *_ in second.rows}
    beyond = tickets.contact_tickets(session, who, PortalTicketFilters(page=99), now=NOW)
    assert beyond.page == 2  # the last page, not an empty one
    resolved = tickets.contact_tickets(session, who, PortalTicketFilters(status="resolved"), now=NOW)
    assert [t.ticket_id for t, *_ in resolved.rows] == [done.ticket_id]
    assert tickets.contact_tickets(session, who, PortalTicketFilters(status="all"), now=NOW).total == 24


def test_search_matches_words_as_typed_and_numbers_but_never_internal_notes(session, company):
    customer, me, *_ = company
    printer = f.make_ticket(session, customer=customer, contact_id=me.contact_id, title="Printer jams on floor 2",
                            description="Paper stuck in tray.")
    vpn = f.make_ticket(session, customer=customer, contact_id=me.contact_id, title="VPN drops",
                        description="Every hour the tunnel resets.", ticket_number="TKT-2026-987654")
    employee = f.make_employee(session)
    session.add(TicketComment(ticket_id=vpn.ticket_id, author_employee_id=employee.employee_id,
                              body="Customer firewall misconfigured, zebracorn", is_internal=True))
    session.flush()
    who = principal(session, me)

    def found(q):
        return [t.ticket_id for t, *_ in tickets.contact_tickets(session, who, PortalTicketFilters(q=q), now=NOW).rows]

    assert found("print") == [printer.ticket_id]  # a word still being typed
    assert found("tray stuck") == [printer.ticket_id]
    assert found("tunnel") == [vpn.ticket_id]
    assert found("zebracorn") == []  # only in an internal note: a contact's search never sees it
    assert found("tkt-2026-987654") == found("TKT-2026-987654") == found("987654") == [vpn.ticket_id]
    assert set(found("!!! ???")) == {printer.ticket_id, vpn.ticket_id}  # nothing to search for: no filter
    assert set(found("'\"):* & |")) == {printer.ticket_id, vpn.ticket_id}  # query syntax is not a word: no filter
    assert found("print & zebracorn") == []  # "&" is not an operator here: both words must match
    assert found("²³") == []  # digits that are no ticket number (int() would fail on them): a word, found nowhere


def test_filters_from_the_query_string_never_fail():
    filters = PortalTicketFilters.from_args({"status": "bogus", "page": "-3", "submitter": "99999999999", "q": " x "})
    assert filters == PortalTicketFilters(status="open", q="x", submitter=None, page=1)
    assert PortalTicketFilters(status="all", page=2).as_args(page=3) == {"status": "all", "page": 3}


# --- rating ----------------------------------------------------------------------------------------

def resolved_ticket(session, customer, contact, **kw):
    return f.make_ticket(session, customer=customer, contact_id=contact.contact_id, status=kw.pop("status", "resolved"),
                         resolved_at=NOW, first_response_at=NOW, **kw)


def test_the_opener_rates_a_resolved_ticket_once(session, company):
    customer, me, *_ = company
    ticket = resolved_ticket(session, customer, me)
    who = principal(session, me)
    tickets.rate_ticket(session, who, ticket, 5, "  Quick and friendly.  ", now=NOW)
    assert (ticket.customer_satisfaction, ticket.satisfaction_comment) == (5, "Quick and friendly.")
    assert session.scalar(sa.select(AuditEvent.action).where(AuditEvent.row_id == ticket.ticket_id,
                                                             AuditEvent.action == "ticket.rated"))
    with pytest.raises(Forbidden, match="rated this ticket already"):
        tickets.rate_ticket(session, who, ticket, 1, None, now=NOW)


@pytest.mark.parametrize("rating", [0, 6, None, -1])
def test_a_rating_outside_1_to_5_is_refused(session, company, rating):
    customer, me, *_ = company
    ticket = resolved_ticket(session, customer, me)
    with pytest.raises(Invalid, match="from 1 to 5") as refused:
        tickets.rate_ticket(session, principal(session, me), ticket, rating, None, now=NOW)
    assert refused.value.field == "customer_satisfaction" and ticket.customer_satisfaction is None


def test_a_long_comment_is_refused(session, company):
    customer, me, *_ = company
    with pytest.raises(Invalid, match="2,000"):
        tickets.rate_ticket(session, principal(session, me), resolved_ticket(session, customer, me), 4, "x" * 2001,
                            now=NOW)


def test_who_may_rate_and_when(session, company):
    customer, me, colleague, boss = company
    with pytest.raises(Forbidden):  # not resolved yet
        tickets.rate_ticket(session, principal(session, me),
                            f.make_ticket(session, customer=customer, contact_id=me.contact_id), 5, None, now=NOW)
    ticket = resolved_ticket(session, customer, me)
    for other in (colleague, boss):  # only the opener, not even the primary contact
        with pytest.raises(Forbidden):
            tickets.rate_ticket(session, principal(session, other), ticket, 5, None, now=NOW)
    closed = resolved_ticket(session, customer, me, status="closed", closed_at=NOW)
    tickets.rate_ticket(session, principal(session, me), closed, 3, None, now=NOW)  # closed after resolving: fine
    assert closed.customer_satisfaction == 3


def test_rating_inside_row_level_security(session, company):
    customer, me, *_ = company
    ticket = resolved_ticket(session, customer, me)
    who = principal(session, me)
    apply_contact_scope(session, customer.customer_id, me.contact_id)
    try:
        tickets.rate_ticket(session, who, ticket, 4, "Good", now=NOW)
    finally:
        clear_contact_scope(session)
    session.expire_all()
    assert session.get(SupportTicket, ticket.ticket_id).customer_satisfaction == 4


# --- emails to the contact ----------------------------------------------------------------------------

def test_a_public_reply_and_a_resolution_email_the_contact_but_an_internal_note_does_not(session, company, outbox):
    customer, me, *_ = company
    ticket = f.make_ticket(session, customer=customer, contact_id=me.contact_id, status="in_progress",
                           first_response_at=NOW)
    tech, who = staff(session, "senior_technician")
    tickets.add_comment(session, who, ticket, "Secret: the root password is hunter2", internal=True, now=NOW)
    assert outbox == []
    tickets.add_comment(session, who, ticket, "Please restart the printer and tell us.", now=NOW)
    tickets.change_status(session, who, ticket, "resolved", expected_version=None, now=NOW,
                          resolution_notes="Replaced the fuser.")
    [reply, resolved] = outbox
    assert reply.to == me.email and ticket.ticket_number in reply.subject
    assert "Please restart the printer" in reply.body and "hunter2" not in reply.body
    assert resolved.subject.startswith(f"[{ticket.ticket_number}] Resolved") and "Replaced the fuser." in resolved.body
    assert f"http://127.0.0.1:5000/portal/tickets/{ticket.ticket_id}" in reply.body  # PUBLIC_BASE_URL's, no request's


def test_contacts_who_prefer_the_phone_get_no_email(session, company, outbox):
    customer, *_ = company
    caller = f.make_contact_login(session, customer=customer, communication_preference="phone")
    ticket = f.make_ticket(session, customer=customer, contact_id=caller.contact_id, status="in_progress")
    _, who = staff(session, "senior_technician")
    tickets.add_comment(session, who, ticket, "We will call you.", now=NOW)
    assert outbox == []


def _queued_mail_jobs(session) -> list:
    return session.execute(sa.text("SELECT args FROM procrastinate_jobs WHERE task_name = 'mail.send'"
                                   " AND status = 'todo' ORDER BY id")).scalars().all()


def test_a_mail_is_queued_with_its_change_and_rolled_back_with_it(session, company, outbox):
    customer, me, *_ = company
    ticket = f.make_ticket(session, customer=customer, contact_id=me.contact_id, status="in_progress")
    _, who = staff(session, "senior_technician")
    with pytest.raises(RuntimeError):
        with session.begin_nested():  # the change fails after the reply: reply and job go together
            tickets.add_comment(session, who, ticket, "Rolled back reply", now=NOW)
            assert len(_queued_mail_jobs(session)) == 1
            raise RuntimeError("the rest of the change failed")
    assert _queued_mail_jobs(session) == [] and outbox == []
    ticket = session.get(SupportTicket, ticket.ticket_id)
    comment = tickets.add_comment(session, who, ticket, "Committed reply", now=NOW)
    assert _queued_mail_jobs(session) == [{"kind": "ticket_replied", "comment_id": comment.comment_id}]
    assert [m.body.count("Committed reply") for m in outbox] == [1]
    assert _queued_mail_jobs(session) == []  # sent once: the job is done


def test_a_contacts_reply_to_a_resolved_ticket_reopens_it(session, company):
    customer, me, *_ = company
    ticket = resolved_ticket(session, customer, me)
    tickets.add_comment(session, principal(session, me), ticket, "Still broken.", now=NOW + timedelta(hours=1))
    assert ticket.status == S.IN_PROGRESS and ticket.resolved_at is None


def test_a_title_is_one_line(session, company):
    customer, me, *_ = company
    ticket = tickets.open_ticket(session, principal(session, me), tickets.NewTicket(
        title="Printer\r\nBcc: everyone@example.com", description="x", category="hardware"), now=NOW)
    assert ticket.title == "Printer Bcc: everyone@example.com"
