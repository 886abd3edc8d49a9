"""A ticket's history in words (services/history.py), from the audit events the ticket services write."""

from __future__ import annotations

from decimal import Decimal as D

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from portal.models import Account, ActorType
from portal.services import audit, auth, tickets
from portal.services.actors import Actor
from portal.services.history import ticket_history
from tests import factories as f
from tests.conftest import count_queries

NOW = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
H = timedelta(hours=1)


def _principal(session, person):
    account_id = session.scalar(sa.select(Account.account_id).where(Account.email == person.email))
    return auth.principal_for(session, account_id)


def test_every_change_reads_as_people_say_it(session):
    customer = f.make_customer(session)
    contract = f.make_contract(session, customer=customer, start_date=NOW.date() - timedelta(days=30),
                               end_date=NOW.date() + timedelta(days=300))
    assert contract
    contact = _principal(session, f.make_contact_login(session, customer=customer))
    senior_row = f.make_staff(session, role="senior_technician", first_name="John", last_name="Davis")
    tech_row = f.make_staff(session, first_name="Amanda", last_name="Lee")
    senior = _principal(session, senior_row)
    ticket = tickets.open_ticket(session, contact, tickets.NewTicket(
        title="Printer jams", description="Every page.", category="hardware", priority="medium"), now=NOW)
    tickets.assign(session, senior, ticket, senior_row.employee_id, expected_version=ticket.version, now=NOW + H)
    tickets.assign(session, senior, ticket, tech_row.employee_id, expected_version=ticket.version, now=NOW + 2 * H)
    tickets.change_status(session, senior, ticket, "in_progress", expected_version=ticket.version, now=NOW + 3 * H)
    tickets.update_details(session, senior, ticket, priority="high", estimated_hours=D("2"), expected_version=ticket.version,
                           now=NOW + 4 * H)
    tickets.update_details(session, senior, ticket, estimated_hours=D("3.50"), expected_version=ticket.version,
                           now=NOW + 5 * H)
    tickets.add_comment(session, senior, ticket, "Checking the tray.", internal=True, now=NOW + 6 * H)
    tickets.change_status(session, senior, ticket, "waiting_customer", expected_version=ticket.version,
                          now=NOW + 7 * H, message="Which tray?")
    tickets.add_comment(session, contact, ticket, "Tray 2.", now=NOW + 8 * H)
    tickets.assign(session, senior, ticket, None, expected_version=ticket.version, now=NOW + 9 * H)
    audit.record(session, Actor(ActorType.SYSTEM, None, "auto-close after 7 days"), "ticket.status_changed",
                 table="support_tickets", row_id=ticket.ticket_id, changes={"status": ("resolved", "closed")})

    history = ticket_history(session, ticket.ticket_id)
    assert [(e.who, e.what) for e in reversed(history)] == [
        (contact.name, "Opened with priority Medium"),
        ("John Davis", "Assigned to John Davis"),
        ("John Davis", "Reassigned from John Davis to Amanda Lee"),
        ("John Davis", "Assigned → In progress"),
        ("John Davis", "Priority: Medium → High; Estimate: none → 2 h"),
        ("John Davis", "Estimate: 2 h → 3.5 h"),
        ("John Davis", "Added an internal note"),
        ("John Davis", "Replied to the customer"),
        ("John Davis", "In progress → Waiting for the customer"),
        (contact.name, "Waiting for the customer → In progress"),
        (contact.name, "Replied"),
        ("John Davis", "Unassigned (was Amanda Lee)"),
        ("TechServ Portal (auto-close after 7 days)", "Resolved → Closed"),
    ]
    text = " ".join(e.what for e in history)
    assert "_" not in text and "employee id" not in text and "E+" not in text


def test_names_cost_one_query_however_many_assignments(session):
    customer = f.make_customer(session)
    senior = _principal(session, f.make_staff(session, role="senior_technician"))
    people = [f.make_staff(session) for _ in range(6)]
    ticket = f.make_ticket(session, customer=customer, created_at=NOW - H)
    for person in people:
        tickets.assign(session, senior, ticket, person.employee_id, expected_version=None, now=NOW)
    assert count_queries(session, lambda: ticket_history(session, ticket.ticket_id)) == 2
    assert ticket_history(session, ticket.ticket_id)[0].what == \
        f"Reassigned from {people[-2].full_name} to {people[-1].full_name}"
    quiet = f.make_ticket(session, customer=customer, created_at=NOW - H)
    assert count_queries(session, lambda: ticket_history(session, quiet.ticket_id)) == 1
    assert ticket_history(session, quiet.ticket_id) == []
