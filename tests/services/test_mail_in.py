"""What a message read from the support mailbox becomes (services/mail_in.py), on real PostgreSQL:
a ticket, a reply threaded by headers or by tag (quoted text stripped), an unmatched mail, or
nothing at all (auto-replies, bounces, loops); each message once; files through the portal's checks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import make_msgid

import pytest
import sqlalchemy as sa

from portal.models import InboundMail, SupportTicket, TicketAttachment, TicketComment
from portal.services import attachments, mail_in, tickets
from portal.services.mail import REPLY_MARKER
from tests import factories as f
from tests.services.test_tickets import staff

NOW = datetime(2026, 6, 1, 15, 0, tzinfo=UTC)
H = timedelta(hours=1)
SETTINGS = mail_in.Settings(own_addresses=frozenset({"support@techserv.example"}), max_per_hour=5)
PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
       b"\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82")


def mail(sender: str, subject: str, text: str, *, headers: dict | None = None, files=(), message_id=None) -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = "support@techserv.example"
    message["Subject"] = subject
    message["Message-ID"] = message_id or make_msgid(domain="customer.example")
    for key, value in (headers or {}).items():
        message[key] = value
    message.set_content(text)
    for name, data, maintype, subtype in files:
        message.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    return message.as_bytes()


@pytest.fixture
def storage(app):
    return attachments.Storage(app.config["ATTACHMENTS_PATH"])


@pytest.fixture
def people(session):
    customer = f.make_customer(session)
    f.make_contract(session, customer)
    contact = f.make_contact_login(session, customer=customer, first_name="Jane", email="jane@customer.example")
    return customer, contact


def process(session, storage, raw, now=NOW):
    return mail_in.process(session, storage, raw, SETTINGS, now=now)


def test_a_known_contact_opens_a_ticket_and_is_told_its_number(session, storage, people, outbox):
    customer, contact = people
    record = process(session, storage, mail("Jane Doe <JANE@customer.example>", "Printer jams",
                                            "The printer upstairs jams on every page.\n\nJane"))
    assert record.outcome == "ticketed"
    ticket = session.get(SupportTicket, record.ticket_id)
    assert (ticket.customer_id, ticket.contact_id, ticket.title) == (customer.customer_id, contact.contact_id,
                                                                      "Printer jams")
    assert "jams on every page" in ticket.description and ticket.contract_id is not None
    [confirmation] = [m for m in outbox if m.ticket_id == ticket.ticket_id]
    assert confirmation.to == "JANE@customer.example" and f"[{ticket.ticket_number}]" in confirmation.subject
    assert confirmation.auto_submitted == "auto-replied" and ticket.ticket_number in confirmation.body


def test_each_message_is_processed_once(session, storage, people):
    raw = mail("jane@customer.example", "Printer jams", "It jams.")
    first = process(session, storage, raw)
    again = process(session, storage, raw)
    assert again.inbound_mail_id == first.inbound_mail_id
    assert session.scalar(sa.select(sa.func.count()).select_from(SupportTicket)
                          .where(SupportTicket.customer_id == people[0].customer_id)) == 1


def _answered_ticket(session, storage, people, outbox):
    """A ticket opened by mail, answered by a technician: the mail that answer sent."""
    record = process(session, storage, mail("jane@customer.example", "VPN down", "The VPN is down."))
    ticket = session.get(SupportTicket, record.ticket_id)
    tech = staff(session, "senior_technician")
    tickets.change_status(session, tech[1], ticket, "in_progress", expected_version=ticket.version, now=NOW + H)
    tickets.add_comment(session, tech[1], ticket, "Which office are you in?", now=NOW + 2 * H)
    [answer] = [m for m in outbox if m.subject.startswith(f"[{ticket.ticket_number}] New reply")]
    return ticket, answer


QUOTED = ("Denver office, second floor.\n\nBest regards,\nJane Doe\nCustomer Inc.\n\n"
          "On Mon, Jun 1, 2026 at 11:00 AM TechServ <support@techserv.example> wrote:\n"
          f"> {REPLY_MARKER}\n> Hello Jane,\n> Which office are you in?\n")


def test_a_reply_threads_by_its_headers_with_the_quoted_history_cut(session, storage, people, outbox):
    ticket, answer = _answered_ticket(session, storage, people, outbox)
    record = process(session, storage, mail("jane@customer.example", "Re: something else entirely", QUOTED,
                                            headers={"In-Reply-To": answer.message_id,
                                                     "References": " ".join(answer.references)}), now=NOW + 3 * H)
    assert record.outcome == "replied" and record.ticket_id == ticket.ticket_id
    comment = session.get(TicketComment, record.comment_id)
    assert comment.body == "Denver office, second floor."
    assert comment.author_contact_id == people[1].contact_id and not comment.is_internal


def test_a_reply_threads_by_the_tag_in_its_subject(session, storage, people, outbox):
    ticket, _ = _answered_ticket(session, storage, people, outbox)
    text = f"Second floor.\n\n-- \nJane\n\n{REPLY_MARKER}\nquoted"
    record = process(session, storage, mail("jane@customer.example", f"RE: [{ticket.ticket_number}] New reply", text))
    assert record.outcome == "replied" and record.ticket_id == ticket.ticket_id
    assert session.get(TicketComment, record.comment_id).body == "Second floor."


def test_the_subject_alone_never_threads(session, storage, people, outbox):
    ticket, _ = _answered_ticket(session, storage, people, outbox)
    record = process(session, storage, mail("jane@customer.example", f"Re: {ticket.title}", "Still down."))
    assert record.outcome == "ticketed" and record.ticket_id != ticket.ticket_id


def test_a_reply_reopens_a_resolved_ticket(session, storage, people, outbox):
    ticket, answer = _answered_ticket(session, storage, people, outbox)
    tech = staff(session, "admin")
    tickets.change_status(session, tech[1], ticket, "resolved", expected_version=ticket.version, now=NOW + 3 * H,
                          resolution_notes="Restarted the VPN gateway.")
    record = process(session, storage, mail("jane@customer.example", "Re: Resolved", "It is down again.",
                                            headers={"In-Reply-To": answer.message_id}), now=NOW + 4 * H)
    assert record.outcome == "replied"
    session.refresh(ticket)
    assert ticket.status == "in_progress" and ticket.resolved_at is None


def test_a_stranger_answering_a_ticket_is_unmatched(session, storage, people, outbox):
    ticket, answer = _answered_ticket(session, storage, people, outbox)
    record = process(session, storage, mail("mallory@elsewhere.example", f"Re: [{ticket.ticket_number}]", "Hi",
                                            headers={"In-Reply-To": answer.message_id}))
    assert record.outcome == "unmatched" and record.ticket_id is None and "not a contact" in record.reason


def test_an_unknown_sender_lands_in_the_unmatched_list(session, storage, people, outbox):
    record = process(session, storage, mail("Bob <bob@newprospect.example>", "Quote please", "Can you quote?"))
    assert record.outcome == "unmatched" and record.reason == "unknown sender" and record.raw
    assert not [m for m in outbox if m.to == "bob@newprospect.example"]  # never answered
    manager = staff(session, "account_manager")
    assert [m.inbound_mail_id for m in mail_in.unmatched(session, manager[1])] == [record.inbound_mail_id]


@pytest.mark.parametrize("headers, sender, why", [
    ({"Auto-Submitted": "auto-replied"}, "jane@customer.example", "Auto-Submitted"),
    ({"Precedence": "bulk"}, "jane@customer.example", "Precedence"),
    ({"X-Autoreply": "yes"}, "jane@customer.example", "X-Autoreply"),
    ({}, "MAILER-DAEMON@mx.customer.example", "bounce"),
    ({}, "support@techserv.example", "loop"),
])
def test_auto_replies_bounces_and_loops_are_ignored(session, storage, people, outbox, headers, sender, why):
    record = process(session, storage, mail(sender, "Out of office", "I am away.", headers=headers))
    assert record.outcome == "ignored" and why in record.reason and record.ticket_id is None
    assert [m for m in outbox] == []


def test_our_own_message_coming_back_is_ignored(session, storage, people, outbox):
    _, answer = _answered_ticket(session, storage, people, outbox)
    record = process(session, storage, mail("jane@customer.example", answer.subject, answer.body,
                                            message_id=answer.message_id))
    assert record.outcome == "ignored" and "our own" in record.reason


def test_too_many_mails_an_hour_from_one_address_is_a_loop(session, storage, people, outbox):
    outcomes = [process(session, storage, mail("jane@customer.example", f"Alert {n}", "Disk full"),
                        now=NOW + n * timedelta(minutes=5)).outcome for n in range(7)]
    assert outcomes == ["ticketed"] * 5 + ["ignored"] * 2
    # An hour later the address is welcome again.
    assert process(session, storage, mail("jane@customer.example", "Alert", "x"), now=NOW + 2 * H).outcome == "ticketed"


def test_attachments_pass_the_portals_checks(session, storage, people, outbox):
    raw = mail("jane@customer.example", "Screenshot", "See the picture.", files=[
        ("screen.png", PNG, "image", "png"),
        ("evil.svg", b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>", "image", "svg+xml"),
        ("fake.pdf", b"MZ\x90\x00 not a pdf", "application", "pdf"),
    ])
    record = process(session, storage, raw)
    assert record.outcome == "ticketed"
    names = session.scalars(sa.select(TicketAttachment.file_name)
                            .where(TicketAttachment.ticket_id == record.ticket_id)).all()
    assert names == ["screen.png"]
    assert "evil.svg" in record.reason and "fake.pdf" in record.reason


def test_an_account_manager_attaches_an_unmatched_mail_to_a_customer(session, storage, people, outbox):
    customer, _ = people
    record = process(session, storage, mail("Bob Stone <bob@customer-new.example>", "New hire laptop", "Need one.",
                                            files=[("screen.png", PNG, "image", "png")]))
    manager = staff(session, "account_manager")
    attached = mail_in.attach_to_customer(session, storage, manager[1], record.inbound_mail_id, customer.customer_id)
    assert attached.outcome == "attached" and attached.raw is None
    ticket = session.get(SupportTicket, attached.ticket_id)
    assert ticket.customer_id == customer.customer_id and ticket.contact.email == "bob@customer-new.example"
    assert (ticket.contact.first_name, ticket.contact.last_name) == ("Bob", "Stone")
    assert session.scalar(sa.select(sa.func.count()).select_from(TicketAttachment)
                          .where(TicketAttachment.ticket_id == ticket.ticket_id)) == 1
    assert [m.to for m in outbox if m.ticket_id == ticket.ticket_id] == ["bob@customer-new.example"]
    assert mail_in.unmatched(session, manager[1]) == []


def test_only_account_managers_and_admins_handle_unmatched_mail(session, storage, people):
    from portal.services.errors import Forbidden

    record = process(session, storage, mail("bob@x.example", "Hi", "Hi"))
    tech = staff(session)
    for call in (lambda: mail_in.unmatched(session, tech[1]),
                 lambda: mail_in.discard(session, tech[1], record.inbound_mail_id)):
        with pytest.raises(Forbidden):
            call()
    admin = staff(session, "admin")
    assert mail_in.discard(session, admin[1], record.inbound_mail_id).outcome == "discarded"
    assert session.get(InboundMail, record.inbound_mail_id).raw is None


def test_contacts_cannot_read_inbound_mail(session, storage, people):
    from tests.test_row_level_security import as_contact_of

    process(session, storage, mail("bob@x.example", "Hi", "Hi"))
    with as_contact_of(session, people[0].customer_id, people[1].contact_id):
        nested = session.begin_nested()
        with pytest.raises(sa.exc.ProgrammingError, match="permission denied"):
            session.execute(sa.text("SELECT count(*) FROM inbound_mails")).scalar_one()
        nested.rollback()


def test_strip_quoted_keeps_a_plain_message_whole():
    assert mail_in.strip_quoted("Line one\nLine two") == "Line one\nLine two"


def test_a_very_long_mail_is_cut_to_what_a_ticket_holds_and_not_lost(session, storage, people):
    record = process(session, storage, mail("jane@customer.example", "Log", "x" * 50_000))
    assert record.outcome == "ticketed"
    description = session.get(SupportTicket, record.ticket_id).description
    assert len(description) <= tickets.MAX_BODY and description.endswith("the whole mail is in the support mailbox]")


def test_a_sender_whose_address_is_a_login_is_not_made_a_contact_twice(session, storage, people, outbox):
    """Attaching goes through crm.add_contact: an address already used by a login is refused with the way out."""
    from portal.services.errors import Conflict

    customer, _ = people
    colleague = f.make_staff(session, email="sam.colleague@techserv.example")
    record = process(session, storage, mail(f"Sam <{colleague.email}>", "From home", "My own laptop."))
    manager = staff(session, "account_manager")
    with pytest.raises(Conflict) as refused:
        mail_in.attach_to_customer(session, storage, manager[1], record.inbound_mail_id, customer.customer_id)
    assert refused.value.message == ("Another login (an employee's) already uses this email address: this mail "
                                     "cannot open a customer's ticket.")
