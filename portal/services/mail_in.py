"""Mail in: what one message read from the support mailbox becomes (the worker reads the mailbox,
portal/jobs/mailbox.py; this decides).

- Each message once: its Message-ID is recorded in inbound_mails in the transaction that acts on
  it, so a message read twice (two workers, a crash between the commit and the move to the
  processed folder) is recognised and acted on once.
- Never ticketed nor answered: auto-replies and bounces (Auto-Submitted other than "no",
  Precedence bulk/junk/list, X-Autoreply, List-Id on an automatic message, a delivery report, a
  sender like MAILER-DAEMON), our own mails coming back (a Message-ID we sent, or From our own
  address), and loops (more than MAIL_IN_MAX_PER_HOUR messages an hour from one address).
- A reply: its In-Reply-To / References name a mail of a ticket (one we sent, one we read, or the
  ticket's root id), or its subject holds a [TKT-...] tag; never the subject's words alone. It
  becomes the sender's public reply (tickets.add_comment, which reopens a resolved ticket as a
  portal reply does), with the quoted history and the signature cut off: first at our "reply above
  this line" marker (and the "On ... wrote:" line before it), then by mail-parser-reply's rules
  (quote headers in many languages, ">" lines, signatures such as "Best regards," or "-- ").
- A known contact's new mail opens a ticket for their customer (subject -> title, text ->
  description, files through attachments.check: type by content, size, never SVG or HTML); the
  confirmation with the number follows (`ticket.received_by_email`).
- Anyone else: kept as "unmatched" for an account manager (attach to a customer, adding the
  sender as a contact, or discard).
"""

from __future__ import annotations

import hashlib
import io
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email import policy as email_policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import parseaddr

import sqlalchemy as sa

from portal.models import (
    AccountStatus,
    Contact,
    Customer,
    InboundMail,
    OutboundMessage,
    SupportTicket,
    TicketCategory,
)
from portal.services import attachments, clock, events, policy, tickets
from portal.services.errors import DomainError, Forbidden, Invalid
from portal.services.mail import REPLY_MARKER

TAG = re.compile(r"\[(TKT-\d{4}-\d{6})\]", re.IGNORECASE)
ROOT_ID = re.compile(r"^<(TKT-\d{4}-\d{6})@", re.IGNORECASE)
MAX_TITLE = 255
DEFAULT_MAX_PER_HOUR = 20
BOUNCE_SENDERS = re.compile(r"^(mailer-daemon|postmaster|no-?reply|bounces?)([+-].*)?@", re.IGNORECASE)


@dataclass(frozen=True)
class Incoming:
    """One message, parsed."""

    message_id: str
    from_address: str
    from_name: str | None
    subject: str
    text: str
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    headers: dict[str, str]
    content_type: str
    files: list[attachments.Upload] = field(default_factory=list)


@dataclass(frozen=True)
class Settings:
    own_addresses: frozenset[str]  # the support mailbox and MAIL_FROM, lower case
    max_per_hour: int = DEFAULT_MAX_PER_HOUR


def _ids(value: str | None) -> tuple[str, ...]:
    return tuple(re.findall(r"<[^<>\s]+>", value or ""))


def _html_to_text(markup: str) -> str:
    from html import unescape

    markup = re.sub(r"(?is)<(script|style|head)\b.*?</\1>", "", markup)
    markup = re.sub(r"(?i)<br\s*/?>|</p>|</div>|</tr>|</h\d>", "\n", markup)
    markup = re.sub(r"(?i)<blockquote\b.*?</blockquote>", "", markup, flags=re.S)
    return unescape(re.sub(r"<[^>]+>", "", markup))


def parse(raw: bytes) -> Incoming:
    """Read one RFC 5322 message (headers decoded, the text part, the attached files)."""
    message: EmailMessage = BytesParser(policy=email_policy.default).parsebytes(raw)
    name, address = parseaddr(str(message.get("From", "")))
    message_id = (_ids(str(message.get("Message-ID", ""))) or (None,))[0]
    if message_id is None:  # a message without one gets a stable id of its own bytes
        message_id = f"<sha256-{hashlib.sha256(raw).hexdigest()}@no-message-id>"
    body = message.get_body(preferencelist=("plain", "html"))
    text = ""
    if body is not None:
        try:
            text = body.get_content()
        except (LookupError, ValueError):
            text = body.get_payload(decode=True).decode("utf-8", "replace")
        if body.get_content_type() == "text/html":
            text = _html_to_text(text)
    files = []
    for part in message.iter_attachments():
        file_name = part.get_filename()
        if not file_name:
            continue
        files.append(attachments.Upload(file_name, io.BytesIO(part.get_payload(decode=True) or b"")))
    headers = {key.lower(): str(value) for key, value in message.items()}
    return Incoming(
        message_id=message_id[:998], from_address=address.strip()[:255], from_name=(name or None),
        subject=" ".join(str(message.get("Subject", "")).split()), text=text.replace("\r\n", "\n"),
        in_reply_to=_ids(str(message.get("In-Reply-To", ""))), references=_ids(str(message.get("References", ""))),
        headers=headers, content_type=message.get_content_type(), files=files,
    )


def strip_quoted(text: str) -> str:
    """The new words of a reply: cut at our marker, then the quoted history and signature
    (mail-parser-reply's rules: "On ... wrote:" headers in many languages, ">" lines, signatures)."""
    from mailparser_reply import EmailReplyParser

    lines = text.replace("\r\n", "\n").split("\n")
    for index, line in enumerate(lines):
        if REPLY_MARKER in line:
            lines = lines[:index]
            # The client's "On Mon ..., X wrote:" line (perhaps wrapped onto two) stands just above.
            while lines and not lines[-1].strip():
                lines.pop()
            if lines and re.search(r"(wrote|schrieb|a écrit|escribió|scrisse|schreef):\s*$", lines[-1]):
                lines.pop()
                if lines and lines[-1].strip() and not re.search(r"[.!?]\s*$", lines[-1]) \
                        and re.match(r"^(On|Am|Le|El|Il|Op)\b", lines[-1].strip()):
                    lines.pop()
            break
    text = "\n".join(lines)
    try:
        parsed = EmailReplyParser(languages=["en", "de", "fr", "es", "it", "nl"]).read(text=text)
        body = parsed.replies[0].body if parsed.replies else text
    except Exception:  # noqa: BLE001  a parser's bad day keeps the whole text, never loses the mail
        body = text
    body = re.split(r"(?m)^-- ?$", body)[0]
    return body.strip()


def ignore_reason(session, incoming: Incoming, settings: Settings, *, now: datetime) -> str | None:
    """Why this message must be neither ticketed nor answered, or None."""
    h = incoming.headers
    auto = h.get("auto-submitted", "no").strip().lower()
    if auto and not auto.startswith("no"):
        return f"automatic message (Auto-Submitted: {auto})"
    precedence = h.get("precedence", "").strip().lower()
    if precedence in ("bulk", "junk", "list", "auto_reply"):
        return f"bulk or list mail (Precedence: {precedence})"
    if any(key in h for key in ("x-autoreply", "x-autorespond", "x-auto-response-suppress-original")):
        return "automatic reply (X-Autoreply)"
    if "list-id" in h or "list-unsubscribe" in h:
        return "mailing list or newsletter (List-Id)"
    if incoming.content_type == "multipart/report" or BOUNCE_SENDERS.match(incoming.from_address or ""):
        return "delivery report (bounce)"
    if not incoming.from_address or "@" not in incoming.from_address:
        return "no sender address"
    if incoming.from_address.lower() in settings.own_addresses:
        return "sent by the portal itself (a loop)"
    if session.scalar(sa.select(sa.literal(True)).where(OutboundMessage.message_id == incoming.message_id)):
        return "one of our own messages (a loop)"
    recent = session.scalar(sa.select(sa.func.count()).select_from(InboundMail).where(
        sa.func.lower(InboundMail.from_address) == incoming.from_address.lower(),
        InboundMail.received_at > now - timedelta(hours=1)))
    if recent >= settings.max_per_hour:
        return f"more than {settings.max_per_hour} messages an hour from this address (a loop?)"
    return None


def _ticket_of(session, incoming: Incoming) -> SupportTicket | None:
    """The ticket a reply belongs to: by its headers first, then by the [TKT-...] tag of its subject."""
    ids = list(dict.fromkeys([*incoming.in_reply_to, *reversed(incoming.references)]))
    if ids:
        ticket_id = session.scalar(
            sa.select(OutboundMessage.ticket_id).where(OutboundMessage.message_id.in_(ids),
                                                       OutboundMessage.ticket_id.is_not(None)).limit(1))
        if ticket_id is None:
            ticket_id = session.scalar(
                sa.select(InboundMail.ticket_id).where(InboundMail.message_id.in_(ids),
                                                       InboundMail.ticket_id.is_not(None)).limit(1))
        if ticket_id is not None:
            return session.get(SupportTicket, ticket_id, with_for_update=True)
        for value in ids:
            if match := ROOT_ID.match(value):
                return _ticket_by_number(session, match.group(1))
    if match := TAG.search(incoming.subject):
        return _ticket_by_number(session, match.group(1))
    return None


def _ticket_by_number(session, number: str) -> SupportTicket | None:
    return session.scalar(sa.select(SupportTicket).where(SupportTicket.ticket_number == number.upper())
                          .with_for_update())


def _contacts_of(session, address: str) -> list[tuple[Contact, Customer]]:
    return session.execute(
        sa.select(Contact, Customer).join(Customer, Customer.customer_id == Contact.customer_id)
        .where(sa.func.lower(Contact.email) == address.lower()).order_by(Contact.contact_id)).all()


def contact_principal(contact: Contact, customer: Customer) -> policy.Principal:
    """The contact acting by email, with the rights their portal login has (they need none to mail us)."""
    return policy.Principal(
        account_id=None, email=contact.email, name=contact.full_name, contact_id=contact.contact_id,
        customer_id=customer.customer_id, customer_name=customer.company_name,
        customer_status=customer.account_status, is_primary_contact=contact.is_primary_contact,
        is_billing_contact=contact.is_billing_contact, can_create_tickets=contact.can_create_tickets,
        can_approve_projects=contact.can_approve_projects,
    )


def _record(session, incoming: Incoming, outcome: str, *, raw: bytes | None = None, reason: str | None = None,
            ticket_id=None, comment_id=None, customer_id=None, now: datetime) -> InboundMail:
    row = InboundMail(message_id=incoming.message_id, from_address=incoming.from_address or "(none)",
                      from_name=incoming.from_name and incoming.from_name[:255], subject=incoming.subject,
                      body=incoming.text, raw=raw, outcome=outcome, reason=reason, received_at=now,
                      ticket_id=ticket_id, comment_id=comment_id, customer_id=customer_id)
    session.add(row)
    session.flush()
    return row


def already_processed(session, message_id: str) -> bool:
    return bool(session.scalar(sa.select(sa.literal(True)).where(InboundMail.message_id == message_id)))


def _fit(text: str) -> str:
    """At most tickets.MAX_BODY characters (the whole mail stays in the mailbox's processed folder)."""
    if len(text) <= tickets.MAX_BODY:
        return text
    return text[:tickets.MAX_BODY - 60].rstrip() + "\n\n[\u2026 cut: the whole mail is in the support mailbox]"


def _new_ticket_data(incoming: Incoming, text: str) -> tickets.NewTicket:
    title = incoming.subject.strip() or "(no subject)"
    if len(title) > MAX_TITLE:
        title = title[:MAX_TITLE - 1] + "\u2026"
    return tickets.NewTicket(title=title, description=_fit(text.strip()) or "(the email had no text)",
                             category=TicketCategory.OTHER)


def process(session, storage: attachments.Storage, raw: bytes, settings: Settings, *,
            now: datetime | None = None) -> InboundMail:
    """Act on one message once and record it; returns its record (the earlier one if already processed).

    A refused file does not lose the mail: the ticket or reply is written without the files and the
    reason is kept on the record. Any other error propagates (the caller rolls back; the message
    stays in the inbox for the next run).
    """
    now = now or clock.now()
    incoming = parse(raw)
    earlier = session.scalar(sa.select(InboundMail).where(InboundMail.message_id == incoming.message_id))
    if earlier is not None:
        return earlier
    if reason := ignore_reason(session, incoming, settings, now=now):
        return _record(session, incoming, "ignored", reason=reason, now=now)
    # A rule that refuses the mail (a closed ticket meanwhile, a suspended customer...) must not leave
    # it in the inbox to fail every minute: it waits in the unmatched list with the reason.
    attempt = session.begin_nested()
    try:
        record = _act(session, storage, raw, incoming, now)
    except DomainError as error:
        attempt.rollback()
        return _record(session, incoming, "unmatched", raw=raw, now=now,
                       reason=f"could not be added: {error.message}")
    attempt.commit()
    return record


def _act(session, storage, raw: bytes, incoming: Incoming, now: datetime) -> InboundMail:

    ticket = _ticket_of(session, incoming)
    people = _contacts_of(session, incoming.from_address)
    if ticket is not None:
        person = next(((c, k) for c, k in people if k.customer_id == ticket.customer_id), None)
        if person is None:
            return _record(session, incoming, "unmatched", raw=raw, now=now,
                           reason=f"answers {ticket.ticket_number}, but the sender is not a contact of that customer")
        principal = contact_principal(*person)
        if ticket.status != "closed" and policy.may_reply_to_ticket(principal, ticket):
            text = _fit(strip_quoted(incoming.text)) or "(the email had no new text)"
            comment, refused = _reply(session, storage, principal, ticket, text, incoming.files, now)
            return _record(session, incoming, "replied", reason=refused, ticket_id=ticket.ticket_id,
                           comment_id=comment.comment_id, customer_id=ticket.customer_id, now=now)
        if ticket.status != "closed":
            return _record(session, incoming, "unmatched", raw=raw, now=now,
                           reason=f"answers {ticket.ticket_number}, which this contact may not see")
        # A closed ticket takes no reply: the mail opens a new ticket that names it.
        incoming = _follow_up_of(incoming, ticket)

    active = [(c, k) for c, k in people if k.account_status in (AccountStatus.ACTIVE, "active")]
    if len(active) == 1:
        principal = contact_principal(*active[0])
        if policy.may_open_ticket(principal):
            return _open(session, storage, principal, incoming, now)
        return _record(session, incoming, "unmatched", raw=raw, customer_id=active[0][1].customer_id, now=now,
                       reason="the sender is a contact who may not open tickets")
    reason = ("the sender is a contact of several customers" if len(active) > 1
              else "the sender's customer is not active" if people else "unknown sender")
    return _record(session, incoming, "unmatched", raw=raw, reason=reason, now=now)


def _follow_up_of(incoming: Incoming, ticket: SupportTicket) -> Incoming:
    from dataclasses import replace

    subject = TAG.sub("", incoming.subject).strip()
    return replace(incoming, subject=subject, text=f"(Follow-up to the closed ticket {ticket.ticket_number}.)\n\n"
                   + strip_quoted(incoming.text))


def _checked(files: list[attachments.Upload]) -> tuple[list[attachments.Upload], str | None]:
    """The files that pass the portal's checks, and why the others were left out."""
    kept, refused = [], []
    for upload in files[:attachments.MAX_FILES]:
        data = upload.stream.read()
        try:
            attachments.check(attachments.Upload(upload.file_name, io.BytesIO(data)))
            kept.append(attachments.Upload(upload.file_name, io.BytesIO(data)))
        except Invalid as error:
            refused.append(error.message)
    if len(files) > attachments.MAX_FILES:
        refused.append(f"only the first {attachments.MAX_FILES} files were kept")
    return kept, ("Files left out: " + " ".join(refused)) if refused else None


def _open(session, storage, principal, incoming: Incoming, now: datetime) -> InboundMail:
    files, refused = _checked(incoming.files)
    data = _new_ticket_data(incoming, incoming.text)
    ticket = attachments.open_ticket_with_files(session, storage, principal, data, files, now=now)
    events.emit(session, principal, "ticket.received_by_email", ticket,
                {"ticket_id": ticket.ticket_id, "ticket_number": ticket.ticket_number, "to": incoming.from_address,
                 "message_id": incoming.message_id})
    return _record(session, incoming, "ticketed", reason=refused, ticket_id=ticket.ticket_id,
                   customer_id=ticket.customer_id, now=now)


def _reply(session, storage, principal, ticket, text: str, uploads, now: datetime):
    files, refused = _checked(uploads)
    comment = attachments.reply_with_files(session, storage, principal, ticket, text, files, now=now)
    return comment, refused


# --- the unmatched list (staff) ----------------------------------------------------------------

PAGE_SIZE = 50


def unmatched(session, principal: policy.Principal, *, before: int | None = None) -> list[InboundMail]:
    """The unmatched mails, newest first, PAGE_SIZE at a time (keyset on the id).

    :raises Forbidden: not an account manager or admin.
    """
    if not policy.may_handle_unmatched_mail(principal):
        raise Forbidden("Only account managers and admins handle unmatched mail.")
    query = (sa.select(InboundMail).where(InboundMail.outcome == "unmatched")
             .options(sa.orm.defer(InboundMail.raw))
             .order_by(InboundMail.inbound_mail_id.desc()).limit(PAGE_SIZE + 1))
    if before is not None:
        query = query.where(InboundMail.inbound_mail_id < before)
    return list(session.scalars(query))


def _unmatched_mail(session, mail_id: int) -> InboundMail:
    from portal.services.errors import NotFound

    mail = session.get(InboundMail, mail_id, with_for_update=True)
    if mail is None or mail.outcome != "unmatched":
        raise NotFound("This mail is not in the unmatched list any more.")
    return mail


def discard(session, principal: policy.Principal, mail_id: int, *, now: datetime | None = None) -> InboundMail:
    """Discard an unmatched mail (kept, marked discarded; never answered).

    :raises Forbidden: not an account manager or admin. :raises NotFound: not unmatched (any more).
    """
    if not policy.may_handle_unmatched_mail(principal):
        raise Forbidden("Only account managers and admins handle unmatched mail.")
    mail = _unmatched_mail(session, mail_id)
    mail.outcome, mail.raw = "discarded", None
    mail.decided_by_employee_id, mail.decided_at = principal.employee_id, now or clock.now()
    events.emit(session, principal, "inbound_mail.discarded", mail, {"from": mail.from_address},
                changes={"outcome": ("unmatched", "discarded")})
    return mail


def attach_to_customer(session, storage: attachments.Storage, principal: policy.Principal, mail_id: int,
                       customer_id: int | None, *, first_name: str = "", last_name: str = "",
                       now: datetime | None = None) -> InboundMail:
    """Attach an unmatched mail to a customer: the sender becomes their contact (if not one yet) and
    the mail opens a ticket for them, with its confirmation.

    :raises Forbidden: not an account manager or admin. :raises NotFound: not unmatched (any more).
    :raises Invalid: no customer chosen, or the new contact's fields are wrong (named).
    """
    from portal.services import crm

    if not policy.may_handle_unmatched_mail(principal):
        raise Forbidden("Only account managers and admins handle unmatched mail.")
    now = now or clock.now()
    mail = _unmatched_mail(session, mail_id)
    customer = session.get(Customer, customer_id) if customer_id else None
    if customer is None:
        raise Invalid("Choose the customer this mail is from.", "customer_id")
    contact = session.scalar(sa.select(Contact).where(Contact.customer_id == customer.customer_id,
                                                      sa.func.lower(Contact.email) == mail.from_address.lower()))
    if contact is None:
        name_first, _, name_last = (mail.from_name or "").strip().partition(" ")
        contact = crm.add_contact_from_mail(session, principal, customer, email=mail.from_address,
                                            first_name=first_name.strip() or name_first,
                                            last_name=last_name.strip() or name_last)
    incoming = parse(mail.raw) if mail.raw else Incoming(mail.message_id, mail.from_address, mail.from_name,
                                                         mail.subject, mail.body, (), (), {}, "text/plain")
    person = contact_principal(contact, customer)
    files, refused = _checked(incoming.files)
    ticket = attachments.open_ticket_with_files(session, storage, person, _new_ticket_data(incoming, incoming.text),
                                                files, now=now)
    events.emit(session, person, "ticket.received_by_email", ticket,
                {"ticket_id": ticket.ticket_id, "ticket_number": ticket.ticket_number, "to": mail.from_address,
                 "message_id": mail.message_id})
    mail.outcome, mail.raw, mail.reason = "attached", None, refused
    mail.ticket_id, mail.customer_id = ticket.ticket_id, customer.customer_id
    mail.decided_by_employee_id, mail.decided_at = principal.employee_id, now
    events.emit(session, principal, "inbound_mail.attached", mail,
                {"from": mail.from_address, "customer_id": customer.customer_id, "ticket_id": ticket.ticket_id},
                changes={"outcome": ("unmatched", "attached")})
    return mail
