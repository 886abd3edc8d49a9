"""Emails to people about what happened to their tickets and projects.

The messages are built here from the rows; the caller sends them with `send` once the change has
committed (a rolled-back change emails nobody). A contact is emailed only when their
communication preference is email: phone and SMS contacts are called by the technician or the
project manager. Internal notes never reach a message.
"""

from __future__ import annotations

import logging

from flask import has_app_context, has_request_context, url_for
from sqlalchemy import event, orm

from portal.models import CommunicationPreference
from portal.services.mail import Mail
from portal.services.money import format_money

log = logging.getLogger("portal.notifications")


def wants_email(contact) -> bool:
    return contact is not None and contact.communication_preference == CommunicationPreference.EMAIL


def send(messages: list[Mail]) -> None:
    """Send after commit; a mail server that fails is logged, never an error page for a saved change."""
    from portal.extensions import mailer

    for message in messages:
        try:
            mailer.send(message.to, message.subject, message.body)
        except Exception:  # noqa: BLE001 - SMTP can fail in many ways; the change itself is saved
            log.exception("Could not email %s about %r", message.to, message.subject)


# --- after commit ----------------------------------------------------------------------------
# Services queue messages on the session; they go out when that session commits and are dropped
# when it rolls back, so every path (pages, htmx, the API, bulk changes) emails the same way.

def queue(session, messages: list[Mail]) -> None:
    session.info.setdefault("pending_mail", []).extend(messages)


def queued(session) -> list[Mail]:
    return list(session.info.get("pending_mail", ()))


@event.listens_for(orm.Session, "after_commit")
def _send_queued(session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint was released (this fires for those too): the change is not saved yet
    messages = session.info.pop("pending_mail", [])
    if messages and has_app_context():
        send(messages)


@event.listens_for(orm.Session, "after_soft_rollback")
def _drop_queued(session, previous_transaction) -> None:
    if previous_transaction.parent is None:
        session.info.pop("pending_mail", None)


def _link(endpoint: str, anchor: str | None = None, **values) -> str:
    if has_request_context():
        return url_for(endpoint, _external=True, _anchor=anchor, **values)
    return "Sign in to TechServ Portal to see it."


# --- tickets ---------------------------------------------------------------------------------

def ticket_replied(ticket, contact, author_name: str, body: str) -> list[Mail]:
    """A staff member answered the customer publicly (never sent for an internal note)."""
    if not wants_email(contact):
        return []
    return [Mail(contact.email, f"[{ticket.ticket_number}] New reply: {ticket.title}",
                 f"Hello {contact.first_name},\n\n{author_name} of TechServ replied to your ticket "
                 f"{ticket.ticket_number} \u201c{ticket.title}\u201d:\n\n{body}\n\n"
                 f"Answer in the portal: {_link('portal.show_ticket', ticket_id=ticket.ticket_id)}\n")]


def ticket_resolved(ticket, contact) -> list[Mail]:
    if not wants_email(contact):
        return []
    return [Mail(contact.email, f"[{ticket.ticket_number}] Resolved: {ticket.title}",
                 f"Hello {contact.first_name},\n\nWe resolved your ticket {ticket.ticket_number} "
                 f"\u201c{ticket.title}\u201d.\n\nHow it was solved:\n{ticket.resolution_notes or ''}\n\n"
                 "If it is not solved, reply in the portal within 7 days and we reopen it; you can also "
                 f"rate our work there: {_link('portal.show_ticket', ticket_id=ticket.ticket_id)}\n")]


# --- projects --------------------------------------------------------------------------------

def phase_approval_requested(project, phase, sponsors, asked_by_name: str) -> list[Mail]:
    """The project manager asks the customer's sponsors to approve a phase; phone and SMS sponsors are called."""
    return [Mail(sponsor.email, f"Please approve: {project.project_name}, phase \u201c{phase.phase_name}\u201d",
                 f"Hello {sponsor.full_name},\n\n{asked_by_name} asks you to approve the phase "
                 f"\u201c{phase.phase_name}\u201d of {project.project_name} ({project.project_number}): budget "
                 f"{format_money(phase.budget_allocation)}, {phase.start_date.isoformat()} to {phase.end_date.isoformat()}."
                 f"\n\nDeliverables: {phase.deliverables or 'see the portal'}\n\nSign in to TechServ Portal to "
                 f"approve or reject it: {_link('portal.show_project', f'phase-{phase.phase_id}', project_id=project.project_id)}\n")
            for sponsor in sponsors if wants_email(sponsor)]


def phase_decided(decision, manager: tuple[str, str] | None) -> list[Mail]:
    """A sponsor approved or rejected a phase: the project manager (an employee, always by email) is told.

    `decision` is a projects.PhaseDecision; `manager` the (name, email) of the project's manager, or None.
    """
    if manager is None:
        return []
    name, email = manager
    project, phase = decision.project, decision.phase
    who = f"{decision.decided_by} ({decision.company_name})" if decision.company_name else decision.decided_by
    when = decision.decided_at.strftime("%Y-%m-%d %H:%M %Z").strip()
    if decision.approved:
        subject = f"Approved: {project.project_name}, phase \u201c{phase.phase_name}\u201d"
        outcome = (f"{who} approved the phase \u201c{phase.phase_name}\u201d of {project.project_name} "
                   f"({project.project_number}) on {when}.\n\nYou can start it when you are ready.")
    else:
        subject = f"Rejected: {project.project_name}, phase \u201c{phase.phase_name}\u201d"
        outcome = (f"{who} rejected the phase \u201c{phase.phase_name}\u201d of {project.project_name} "
                   f"({project.project_number}) on {when}.\n\nTheir reason:\n{decision.reason}\n\n"
                   "Revise the phase and ask the customer again.")
    project_url = _link("projects.show_project", f"phase-{phase.phase_id}", project_id=project.project_id)
    return [Mail(email, subject, f"Hello {name},\n\n{outcome}\n\nThe project: {project_url}\n")]
