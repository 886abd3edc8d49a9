"""Mail out carries what lets a customer answer from their inbox: Message-ID (stored), In-Reply-To and
References, the [TKT-...] tag, text and HTML parts, the reply marker, and Auto-Submitted on automatic mails."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from portal.models import OutboundMessage
from portal.services import tickets
from portal.services.mail import REPLY_MARKER, email_message
from tests import factories as f
from tests.services.test_tickets import new, principal, staff

NOW = datetime(2026, 6, 1, 15, 0, tzinfo=UTC)
H = timedelta(hours=1)
SENDER = "TechServ Support <support@techserv.example>"


def test_ticket_mails_thread_and_carry_both_parts(session, outbox):
    customer = f.make_customer(session)
    f.make_contract(session, customer)
    contact = f.make_contact_login(session, customer=customer)
    tech = staff(session)
    ticket = tickets.open_ticket(session, principal(session, contact), new(), now=NOW)
    tickets.change_status(session, tech[1], ticket, "in_progress", expected_version=ticket.version, now=NOW + H)
    tickets.add_comment(session, tech[1], ticket, "Which printer is it?", now=NOW + 2 * H)
    tickets.change_status(session, tech[1], ticket, "resolved", expected_version=ticket.version, now=NOW + 3 * H,
                          resolution_notes="Replaced the toner.")
    reply, resolved = [m for m in outbox if m.ticket_id == ticket.ticket_id]

    tag = f"[{ticket.ticket_number}]"
    assert reply.subject.startswith(tag) and resolved.subject.startswith(tag)
    stored = session.scalars(sa.select(OutboundMessage.message_id)
                             .where(OutboundMessage.ticket_id == ticket.ticket_id)).all()
    assert sorted(stored) == sorted([reply.message_id, resolved.message_id])
    # Every mail references the ticket's root id; the second answers the first.
    assert reply.references[0] == resolved.references[0] and ticket.ticket_number in reply.references[0]
    assert resolved.in_reply_to == reply.message_id and reply.message_id in resolved.references

    message = email_message(reply, SENDER)
    assert message["Message-ID"] == reply.message_id and message["References"]
    assert message["Auto-Submitted"] is None  # a technician's words
    assert [part.get_content_type() for part in message.iter_parts()] == ["text/plain", "text/html"]
    text = message.get_body(("plain",)).get_content()
    assert text.startswith(REPLY_MARKER) and "Which printer is it?" in text
    html = message.get_body(("html",)).get_content()
    assert "Which printer is it?" in html and "<script" not in html
    assert email_message(resolved, SENDER)["Auto-Submitted"] == "auto-generated"


def test_the_html_part_escapes_what_people_wrote(session):
    from portal.services.mail import Mail, html_of

    body = html_of(Mail("a@example.com", "s", "<b>bold</b> & https://portal.example/x?a=1&b=2"))
    assert "&lt;b&gt;bold&lt;/b&gt; &amp;" in body and '<a href="https://portal.example/x?a=1&amp;b=2">' in body
