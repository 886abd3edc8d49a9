"""Emails to people about what happened: which events cause which mail, and the mails themselves.

`jobs_for(event)` is asked by `events.emit` in the transaction of the change; it names the mail
and the ids it is built from. The worker then builds each mail from the rows as they are, with
links to PUBLIC_BASE_URL (never the host a request claimed), and sends it; a mail server that
fails is retried with backoff. A contact is emailed only when their communication preference is
email: phone and SMS contacts are called by the technician or the project manager. Internal
notes never reach a message. Invitation and reset links are issued by the worker itself, so no
secret waits in the job table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from portal.models import (
    Account,
    CommunicationPreference,
    Contact,
    PhaseStatus,
    Project,
    ProjectPhase,
    SupportTicket,
    TicketComment,
)
from portal.services import clock
from portal.services.mail import Mail
from portal.services.money import format_money

MAIL_TASK = "mail.send"


def wants_email(contact) -> bool:
    return contact is not None and contact.communication_preference == CommunicationPreference.EMAIL


# --- which events send mail ------------------------------------------------------------------

def jobs_for(event) -> list:
    """The mail jobs `event` starts (none for most events)."""
    from portal.jobs.queue import Job

    def mail(kind: str, **ids) -> Job:
        return Job(MAIL_TASK, {"kind": kind, **ids}, queue="mail")

    data = event.data
    if event.name == "ticket.received_by_email":
        return [mail("ticket_received", ticket_id=event.row_id, to=data["to"])]
    if event.name == "ticket.replied" and not data.get("internal"):
        return [mail("ticket_replied", comment_id=data["comment_id"])]
    if event.name == "ticket.status_changed" and data.get("to") == "resolved":
        return [mail("ticket_resolved", ticket_id=event.row_id)]
    if event.name == "phase.approval_requested":
        return [mail("phase_approval_requested", phase_id=event.row_id, asked_by=data.get("asked_by", ""))]
    if event.name in ("phase.approved", "phase.rejected"):
        return [mail("phase_decided", phase_id=event.row_id)]
    if event.name == "password.reset_requested" and data.get("account_id"):
        return [mail("password_reset", account_id=data["account_id"])]
    if event.name == "webhook.subscription_disabled":
        return [mail("webhook_disabled", subscription_id=event.row_id)]
    if event.name == "invoice.sent":
        return [mail("invoice_sent", invoice_id=event.row_id)]
    if event.name == "invitation.sent":
        return [mail("invitation", account_id=data["account_id"], invited_by=data.get("invited_by", ""))]
    return []


# --- building them (in the worker) -------------------------------------------------------------

@dataclass(frozen=True)
class MailContext:
    """What the worker gives the builders: absolute links, the key that signs links, the time."""

    link: Callable[..., str]  # link(endpoint, anchor=None, **values) -> "https://portal.example/..."
    secret_key: str
    now: datetime


def messages_for(session, kind: str, args: dict, context: MailContext) -> list[Mail]:
    """The mails of one job, built from the rows as they are now (empty when nobody is to be emailed).

    :raises KeyError: an unknown kind of mail (a job written by another version of the app).
    """
    return BUILDERS[kind](session, context, **args)


def _ticket_replied(session, context: MailContext, *, comment_id: int) -> list[Mail]:
    """A staff member answered the customer publicly (never sent for an internal note)."""
    comment = session.get(TicketComment, comment_id)
    if comment is None or comment.is_internal or comment.author_employee is None:
        return []
    ticket = comment.ticket
    contact = ticket.contact
    if not wants_email(contact):
        return []
    link = context.link("portal.show_ticket", ticket_id=ticket.ticket_id)
    # A person's words: no Auto-Submitted, so the customer's mail client treats it as a letter.
    return [Mail(contact.email, f"[{ticket.ticket_number}] New reply: {ticket.title}",
                 f"Hello {contact.first_name},\n\n{comment.author_employee.full_name} of TechServ replied to your "
                 f"ticket {ticket.ticket_number} \u201c{ticket.title}\u201d:\n\n{comment.body}\n\n"
                 f"Answer this email, or in the portal: {link}\n",
                 ticket_id=ticket.ticket_id, auto_submitted=None, reply_marker=True)]


def _ticket_received(session, context: MailContext, *, ticket_id: int, to: str) -> list[Mail]:
    """The confirmation of a ticket opened by email, with its number, to the address that wrote."""
    ticket = session.get(SupportTicket, ticket_id)
    if ticket is None:
        return []
    name = ticket.contact.first_name if ticket.contact else "there"
    link = context.link("portal.show_ticket", ticket_id=ticket.ticket_id)
    return [Mail(to, f"[{ticket.ticket_number}] Received: {ticket.title}",
                 f"Hello {name},\n\nWe received your request and opened the ticket {ticket.ticket_number} "
                 f"\u201c{ticket.title}\u201d. A technician will answer soon.\n\nTo add something, answer this "
                 f"email (keep {ticket.ticket_number} in the subject), or follow it in the portal: {link}\n",
                 ticket_id=ticket.ticket_id, auto_submitted="auto-replied", reply_marker=True)]


def _ticket_resolved(session, context: MailContext, *, ticket_id: int) -> list[Mail]:
    ticket = session.get(SupportTicket, ticket_id)
    if ticket is None or not wants_email(ticket.contact):
        return []
    contact = ticket.contact
    link = context.link("portal.show_ticket", ticket_id=ticket.ticket_id)
    return [Mail(contact.email, f"[{ticket.ticket_number}] Resolved: {ticket.title}",
                 f"Hello {contact.first_name},\n\nWe resolved your ticket {ticket.ticket_number} "
                 f"\u201c{ticket.title}\u201d.\n\nHow it was solved:\n{ticket.resolution_notes or ''}\n\n"
                 "If it is not solved, answer this email or reply in the portal within 7 days and we reopen "
                 f"it; you can also rate our work there: {link}\n",
                 ticket_id=ticket.ticket_id, reply_marker=True)]


def _phase_approval_requested(session, context: MailContext, *, phase_id: int, asked_by: str) -> list[Mail]:
    """The project manager asks the customer's sponsors to approve a phase; phone and SMS sponsors are called."""
    phase = session.get(ProjectPhase, phase_id)
    if phase is None or phase.approved_at is not None or phase.phase_status != PhaseStatus.PLANNING:
        return []  # decided or changed meanwhile: nobody is to be asked any more
    project = phase.project
    sponsors = session.scalars(sa.select(Contact).where(
        Contact.customer_id == project.customer_id, Contact.can_approve_projects.is_(True))
        .order_by(Contact.last_name)).all()
    link = context.link("portal.show_project", f"phase-{phase.phase_id}", project_id=project.project_id)
    return [Mail(sponsor.email, f"Please approve: {project.project_name}, phase \u201c{phase.phase_name}\u201d",
                 f"Hello {sponsor.full_name},\n\n{asked_by} asks you to approve the phase "
                 f"\u201c{phase.phase_name}\u201d of {project.project_name} ({project.project_number}): budget "
                 f"{format_money(phase.budget_allocation)}, {phase.start_date.isoformat()} to {phase.end_date.isoformat()}."
                 f"\n\nDeliverables: {phase.deliverables or 'see the portal'}\n\nSign in to TechServ Portal to "
                 f"approve or reject it: {link}\n")
            for sponsor in sponsors if wants_email(sponsor)]


def _phase_decided(session, context: MailContext, *, phase_id: int) -> list[Mail]:
    """A sponsor approved or rejected a phase: the project manager (an employee, always by email) is told."""
    phase = session.get(ProjectPhase, phase_id)
    if phase is None:
        return []
    project: Project = phase.project
    manager = project.project_manager
    if manager is None:
        return []
    approved = phase.approved_at is not None
    sponsor = phase.approved_by_contact if approved else phase.rejected_by_contact
    decided_at = phase.approved_at if approved else phase.rejected_at
    if decided_at is None:
        return []  # the decision was undone meanwhile (the plan changed); nothing to tell
    who = f"{sponsor.full_name} ({sponsor.customer.company_name})" if sponsor else "The customer's sponsor"
    when = decided_at.astimezone(clock.business_zone()).strftime("%Y-%m-%d %H:%M %Z")
    name = f"{project.project_name}, phase \u201c{phase.phase_name}\u201d"
    if approved:
        subject = f"Approved: {name}"
        outcome = (f"{who} approved the phase \u201c{phase.phase_name}\u201d of {project.project_name} "
                   f"({project.project_number}) on {when}.\n\nYou can start it when you are ready.")
    else:
        subject = f"Rejected: {name}"
        outcome = (f"{who} rejected the phase \u201c{phase.phase_name}\u201d of {project.project_name} "
                   f"({project.project_number}) on {when}.\n\nTheir reason:\n{phase.rejection_reason}\n\n"
                   "Revise the phase and ask the customer again.")
    link = context.link("projects.show_project", f"phase-{phase.phase_id}", project_id=project.project_id)
    return [Mail(manager.email, subject, f"Hello {manager.full_name},\n\n{outcome}\n\nThe project: {link}\n")]


def _password_reset(session, context: MailContext, *, account_id: int) -> list[Mail]:
    from portal.services import auth

    account = session.get(Account, account_id)
    if account is None or auth.principal_for(session, account_id) is None:
        return []  # deactivated meanwhile
    token = auth.issue_link_token(session, account, "password_reset", secret_key=context.secret_key, now=context.now)
    link = context.link("auth.reset_password", token=token)
    return [Mail(account.email, "Reset your TechServ Portal password",
                 f"Hello {account.display_name},\n\nSomeone (we hope you) asked to reset the password of "
                 f"your TechServ Portal login. Open this link within 24 hours to choose a new one:\n\n"
                 f"{link}\n\nThe link works once. If you did not ask for this, ignore this email; "
                 "your password stays as it is.\n")]


def _invitation(session, context: MailContext, *, account_id: int, invited_by: str) -> list[Mail]:
    from portal.services import auth

    account = session.get(Account, account_id)
    if account is None or account.password_hash:
        return []  # they chose a password meanwhile
    token = auth.issue_link_token(session, account, "invitation", secret_key=context.secret_key, now=context.now)
    link = context.link("auth.accept_invitation", token=token)
    return [Mail(account.email, "Your TechServ Portal login",
                 f"Hello {account.display_name},\n\n{invited_by} invited you to TechServ Portal. "
                 f"Open this link within 24 hours to choose your password:\n\n{link}\n\n"
                 "The link works once. Afterwards, sign in with this email address.\n")]


def _webhook_disabled(session, context: MailContext, *, subscription_id: int) -> list[Mail]:
    """A subscription failed for days and was disabled: every active admin is told."""
    from portal.models import Employee, EmployeeRole, EmploymentStatus, WebhookSubscription

    subscription = session.get(WebhookSubscription, subscription_id)
    if subscription is None or subscription.is_active:
        return []  # deleted or enabled again meanwhile
    admins = session.scalars(sa.select(Employee).where(
        Employee.role == EmployeeRole.ADMIN, Employee.employment_status == EmploymentStatus.ACTIVE)
        .order_by(Employee.employee_id)).all()
    link = context.link("integrations.show_webhook", subscription_id=subscription_id)
    return [Mail(admin.email, f"Webhook disabled: {subscription.url}",
                 f"Hello {admin.full_name},\n\nThe webhook subscription to {subscription.url} was disabled: "
                 f"{subscription.disabled_reason}\n\nNo more events are sent to it. Check the receiver, then enable "
                 f"the subscription again and resend what it missed: {link}\n")
            for admin in admins]


def _invoice_sent(session, context: MailContext, *, invoice_id: int) -> list[Mail]:
    """A new invoice, to the customer's billing contacts (its primary contacts when it names none)."""
    from portal.models import Invoice
    from portal.services.billing import billing_recipients

    invoice = session.get(Invoice, invoice_id)
    if invoice is None or invoice.invoice_status.value == "draft":
        return []
    link = context.link("portal.show_invoice", invoice_id=invoice.invoice_id)
    period = (f" for {invoice.period_start:%d %b %Y} to {invoice.period_end:%d %b %Y}"
              if invoice.period_start else "")
    return [Mail(contact.email, f"Invoice {invoice.invoice_number} from TechServ: {format_money(invoice.total_amount)}",
                 f"Hello {contact.first_name},\n\nYour invoice {invoice.invoice_number}{period} is ready: "
                 f"{format_money(invoice.total_amount)}, due on {invoice.due_date:%d %b %Y} ({invoice.payment_terms}).\n\n"
                 f"See it and download the PDF in the portal: {link}\n")
            for contact in billing_recipients(session, invoice.customer_id) if wants_email(contact)]


BUILDERS: dict[str, Callable[..., list[Mail]]] = {
    "invoice_sent": _invoice_sent,
    "ticket_received": _ticket_received,
    "ticket_replied": _ticket_replied,
    "ticket_resolved": _ticket_resolved,
    "phase_approval_requested": _phase_approval_requested,
    "phase_decided": _phase_decided,
    "password_reset": _password_reset,
    "invitation": _invitation,
    "webhook_disabled": _webhook_disabled,
}


# --- threading (in the worker, just before a ticket's mail goes out) ---------------------------

MAX_REFERENCES = 10


def thread_root(ticket_number: str, sender: str) -> str:
    """The ticket's own <TKT-...@domain>: first in every mail's References, so every reply carries it."""
    domain = sender.rpartition("@")[2].rstrip(">").strip() or "localhost"
    return f"<{ticket_number}@{domain}>"


def thread_mail(session, mail: Mail, sender: str) -> Mail:
    """Give a ticket's mail its Message-ID, In-Reply-To and References, and record the Message-ID
    (in the sending job's transaction: a mail that was not sent leaves no record)."""
    from dataclasses import replace

    from portal.models import InboundMail, OutboundMessage
    from portal.services.mail import new_message_id

    if mail.ticket_id is None:
        return mail
    ticket = session.get(SupportTicket, mail.ticket_id)
    earlier = session.execute(
        sa.select(OutboundMessage.message_id, OutboundMessage.sent_at)
        .where(OutboundMessage.ticket_id == mail.ticket_id)
        .union_all(sa.select(InboundMail.message_id, InboundMail.received_at)
                   .where(InboundMail.ticket_id == mail.ticket_id))
        .order_by(sa.text("2 DESC")).limit(MAX_REFERENCES - 1)).scalars().all()
    references = (thread_root(ticket.ticket_number, sender), *reversed(earlier))
    message_id = new_message_id(sender)
    session.add(OutboundMessage(message_id=message_id, ticket_id=mail.ticket_id, recipient=mail.to))
    return replace(mail, message_id=message_id, in_reply_to=references[-1], references=references)
