"""Tickets (services/tickets.py): opening, status moves, assignment, the conversation, optimistic
locking, bulk changes and auto-close, on the real database."""

from __future__ import annotations

from decimal import Decimal as D

import re
from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy import orm
from sqlalchemy.orm.exc import StaleDataError

from portal.extensions import db
from portal.models import (
    Account,
    AuditEvent,
    Customer,
    SupportTicket,
    TicketComment,
    TicketStatus,
    TicketStatusChange,
)
from portal.services import auth, tickets
from portal.services.errors import Conflict, Forbidden, Invalid, NotFound
from portal.services.sla import sla_state
from portal.services.policy import Principal
from portal.services.tickets import STAFF_MOVES, NewTicket
from tests import commands
from tests import factories as f

S = TicketStatus
NOW = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
H = timedelta(hours=1)
NUMBER = re.compile(r"^TKT-2026-\d{6}$")


# --- helpers ---------------------------------------------------------------------------------

def principal(session, person):
    account_id = session.scalar(sa.select(Account.account_id).where(Account.email == person.email))
    return auth.principal_for(session, account_id)


def staff(session, role="technician", **kw):
    employee = f.make_staff(session, role=role, **kw)
    return employee, principal(session, employee)


def new(**kw) -> NewTicket:
    values = dict(title="Printer jams on every page", description="Since this morning.", category="hardware",
                  priority="high")
    values.update(kw)
    return commands.new_ticket(**values)


def ticket_in(session, customer, status: S, assignee=None, **kw) -> SupportTicket:
    """A ticket already in `status`, with the timestamps that status implies."""
    created = NOW - 10 * H
    values = dict(status=status, created_at=created, last_activity_at=created,
                  assigned_employee_id=assignee.employee_id if assignee else None,
                  assigned_at=created + H if assignee else None)
    if status in (S.RESOLVED, S.CLOSED):
        values.update(resolved_at=created + 2 * H, resolution_notes="Fixed.", first_response_at=created + H)
    if status == S.CLOSED:
        values["closed_at"] = created + 3 * H
    values.update(kw)
    return f.make_ticket(session, customer, **values)


def status_log(session, ticket):
    return session.execute(
        sa.select(TicketStatusChange.from_status, TicketStatusChange.to_status, TicketStatusChange.changed_at,
                  TicketStatusChange.actor_type, TicketStatusChange.actor_id)
        .where(TicketStatusChange.ticket_id == ticket.ticket_id)
        .order_by(TicketStatusChange.changed_at, TicketStatusChange.change_id)).all()


def events(session, action, ticket):
    return session.scalars(sa.select(AuditEvent).where(
        AuditEvent.action == action, AuditEvent.table_name == "support_tickets",
        AuditEvent.row_id == ticket.ticket_id).order_by(AuditEvent.event_id)).all()


def db_row(session, ticket):
    """The ticket as stored (not the identity map's copy)."""
    session.flush()
    return session.execute(sa.select(SupportTicket.__table__).where(
        SupportTicket.ticket_id == ticket.ticket_id)).one()


@pytest.fixture
def customer(session):
    return f.make_customer(session)


@pytest.fixture
def contract(session, customer):
    # Around the active contract: an expired one, a draft and a terminated one that also cover today.
    f.make_contract(session, customer, start_date=date(2025, 1, 1), end_date=date(2025, 12, 31),
                    contract_status="expired", response_time_hours=1, resolution_time_hours=2)
    f.make_contract(session, customer, contract_status="draft", response_time_hours=1, resolution_time_hours=2)
    f.make_contract(session, customer, contract_status="terminated", response_time_hours=1, resolution_time_hours=2)
    return f.make_contract(session, customer, response_time_hours=4, resolution_time_hours=24)


@pytest.fixture
def contact(session, customer):
    return f.make_contact_login(session, customer=customer)


@pytest.fixture
def tech(session):
    return staff(session)


@pytest.fixture
def senior(session):
    return staff(session, "senior_technician")


# --- open_ticket -----------------------------------------------------------------------------

class TestOpenTicket:
    def test_contact_opens_a_ticket_with_number_contract_sla_log_and_audit(self, session, customer, contract,
                                                                             contact):
        other = f.make_customer(session)
        ticket = tickets.open_ticket(session, principal(session, contact).at("203.0.113.9"),
                                     new(title="  Printer jams  ", customer_id=other.customer_id), now=NOW)
        assert NUMBER.match(ticket.ticket_number)
        # The contact's own customer, whatever the input says.
        assert (ticket.customer_id, ticket.contact_id) == (customer.customer_id, contact.contact_id)
        assert ticket.title == "Printer jams"
        assert ticket.status == S.OPEN and ticket.priority == "high" and ticket.category == "hardware"
        assert ticket.created_at == ticket.last_activity_at == NOW
        assert ticket.assigned_employee_id is None
        assert ticket.contract_id == contract.contract_id  # the active one, not expired/draft/terminated
        assert ticket.response_due_at == NOW + 4 * H
        assert ticket.resolution_due_at == NOW + 24 * H
        assert ticket.sla_due_at == NOW + 4 * H
        assert ticket.sla_at_risk_at == NOW + 3 * H
        assert sla_state(ticket, NOW) == "ok"
        assert status_log(session, ticket) == [(None, S.OPEN, NOW, "contact", contact.contact_id)]
        [event] = events(session, "ticket.created", ticket)
        assert (event.actor_type, event.actor_id, str(event.ip_address)) == ("contact", contact.contact_id,
                                                                             "203.0.113.9")
        assert event.changes == {"ticket_number": {"old": None, "new": ticket.ticket_number},
                                 "priority": {"old": None, "new": "high"}}
        stored = db_row(session, ticket)
        assert stored.sla_due_at == NOW + 4 * H and stored.ticket_number == ticket.ticket_number

    def test_numbers_are_distinct_and_priority_defaults_to_medium(self, session, contract, contact):
        who = principal(session, contact)
        first = tickets.open_ticket(session, who, new(priority=""), now=NOW)
        second = tickets.open_ticket(session, who, new(), now=NOW + H)
        assert first.priority == "medium"
        assert first.ticket_number != second.ticket_number
        assert all(NUMBER.match(t.ticket_number) for t in (first, second))

    def test_year_of_the_number_is_the_ticket_s(self, session, contact):
        ticket = tickets.open_ticket(session, principal(session, contact), new(),
                                     now=datetime(2027, 1, 2, tzinfo=UTC))
        assert ticket.ticket_number.startswith("TKT-2027-")

    def test_contact_without_can_create_tickets_is_forbidden(self, session, customer):
        contact = f.make_contact_login(session, customer=customer, can_create_tickets=False)
        with pytest.raises(Forbidden):
            tickets.open_ticket(session, principal(session, contact), new(), now=NOW)
        assert session.scalar(sa.select(sa.func.count()).select_from(SupportTicket)
                              .where(SupportTicket.customer_id == customer.customer_id)) == 0

    def test_contact_of_suspended_customer_is_forbidden(self, session):
        customer = f.make_customer(session, account_status="suspended")
        contact = f.make_contact_login(session, customer=customer)
        who = principal(session, contact)
        assert who.read_only
        with pytest.raises(Forbidden):
            tickets.open_ticket(session, who, new(), now=NOW)

    def test_bad_fields_are_each_named(self, session, contact):
        with pytest.raises(Invalid) as caught:
            tickets.open_ticket(session, principal(session, contact),
                                new(title="   ", category=None), now=NOW)
        assert set(caught.value.errors) == {"title", "category"}
        assert caught.value.field == "title"
        with pytest.raises(Invalid) as caught:
            tickets.open_ticket(session, principal(session, contact),
                                new(title="x" * 256, description="", category=None), now=NOW)
        assert set(caught.value.errors) == {"title", "description", "category"}

    def test_title_of_255_characters_is_fine(self, session, contact):
        ticket = tickets.open_ticket(session, principal(session, contact), new(title="x" * 255), now=NOW)
        assert len(ticket.title) == 255

    def test_staff_opens_on_behalf_of_a_contact(self, session, customer, contract, contact, tech):
        employee, who = tech
        ticket = tickets.open_ticket(session, who, new(customer_id=customer.customer_id,
                                                       contact_id=contact.contact_id), now=NOW)
        assert (ticket.customer_id, ticket.contact_id) == (customer.customer_id, contact.contact_id)
        assert ticket.contract_id == contract.contract_id
        assert status_log(session, ticket) == [(None, S.OPEN, NOW, "employee", employee.employee_id)]
        [event] = events(session, "ticket.created", ticket)
        assert (event.actor_type, event.actor_id) == ("employee", employee.employee_id)

    def test_account_manager_may_open_for_a_customer_project_manager_may_not(self, session, customer):
        _, manager = staff(session, "account_manager")
        ticket = tickets.open_ticket(session, manager, new(customer_id=customer.customer_id), now=NOW)
        assert ticket.customer_id == customer.customer_id and ticket.contact_id is None
        _, pm = staff(session, "project_manager")
        with pytest.raises(Forbidden):
            tickets.open_ticket(session, pm, new(customer_id=customer.customer_id), now=NOW)

    def test_staff_must_choose_the_customer(self, session, tech):
        with pytest.raises(Invalid) as caught:
            tickets.open_ticket(session, tech[1], new(), now=NOW)
        assert caught.value.field == "customer_id"
        with pytest.raises(Invalid) as caught:
            tickets.open_ticket(session, tech[1], new(customer_id=2_000_000_000), now=NOW)
        assert "customer_id" in caught.value.errors

    def test_staff_contact_must_belong_to_the_customer(self, session, customer, tech):
        stranger = f.make_contact(session)  # another customer's
        with pytest.raises(Invalid) as caught:
            tickets.open_ticket(session, tech[1], new(customer_id=customer.customer_id,
                                                      contact_id=stranger.contact_id), now=NOW)
        assert set(caught.value.errors) == {"contact_id"}
        with pytest.raises(Invalid) as caught:
            tickets.open_ticket(session, tech[1], new(customer_id=customer.customer_id, contact_id=2_000_000_000),
                                now=NOW)
        assert set(caught.value.errors) == {"contact_id"}

    def test_staff_errors_name_every_field(self, session, tech):
        with pytest.raises(Invalid) as caught:
            tickets.open_ticket(session, tech[1], new(title="", category=None), now=NOW)
        assert set(caught.value.errors) == {"title", "category", "customer_id"}

    def test_customer_without_an_active_contract_has_no_sla(self, session, customer, contact):
        f.make_contract(session, customer, start_date=date(2025, 1, 1), end_date=date(2025, 12, 31),
                        contract_status="active")  # active, but over before the ticket's day
        f.make_contract(session, customer, start_date=date(2026, 6, 2), end_date=date(2026, 12, 31),
                        contract_status="active")  # starts the day after
        f.make_contract(session, customer, contract_status="draft")
        ticket = tickets.open_ticket(session, principal(session, contact), new(), now=NOW)
        assert ticket.contract_id is None
        assert (ticket.response_due_at, ticket.resolution_due_at, ticket.sla_due_at, ticket.sla_at_risk_at) \
            == (None, None, None, None)
        assert sla_state(ticket, NOW) is None

    def test_contract_covering_exactly_the_day_counts(self, session, customer, contact):
        contract = f.make_contract(session, customer, start_date=date(2026, 6, 1), end_date=date(2026, 6, 30),
                                   response_time_hours=8, resolution_time_hours=48)
        ticket = tickets.open_ticket(session, principal(session, contact), new(), now=NOW)
        assert ticket.contract_id == contract.contract_id
        assert ticket.response_due_at == NOW + 8 * H


# --- visibility ------------------------------------------------------------------------------

class TestVisibleTicket:
    def test_contacts_see_their_own_primary_contacts_their_company_s(self, session, customer, contact):
        colleague = f.make_contact_login(session, customer=customer)
        primary = f.make_contact_login(session, customer=customer, is_primary_contact=True)
        mine = ticket_in(session, customer, S.OPEN, contact_id=contact.contact_id)
        theirs = ticket_in(session, customer, S.OPEN, contact_id=colleague.contact_id)
        elsewhere = ticket_in(session, f.make_customer(session), S.OPEN)
        me = principal(session, contact)
        assert tickets.visible_ticket(session, me, mine.ticket_id) is mine
        for hidden in (theirs, elsewhere):
            with pytest.raises(NotFound):
                tickets.visible_ticket(session, me, hidden.ticket_id)
        boss = principal(session, primary)
        assert tickets.visible_ticket(session, boss, theirs.ticket_id) is theirs
        with pytest.raises(NotFound):
            tickets.visible_ticket(session, boss, elsewhere.ticket_id)

    def test_staff_see_every_ticket_and_missing_is_not_found(self, session, customer, tech):
        ticket = ticket_in(session, customer, S.OPEN)
        assert tickets.visible_ticket(session, tech[1], ticket.ticket_id, lock=True) is ticket
        with pytest.raises(NotFound):
            tickets.visible_ticket(session, tech[1], 2_000_000_000)


# --- change_status ---------------------------------------------------------------------------

ALLOWED = [(a, b) for a, targets in STAFF_MOVES.items() for b in targets]
REFUSED = [(a, b) for a in S for b in S if b not in STAFF_MOVES[a]]


class TestChangeStatus:
    def test_the_move_table_is_the_design_s(self):
        assert set(ALLOWED) == {
            (S.OPEN, S.ASSIGNED), (S.OPEN, S.IN_PROGRESS), (S.ASSIGNED, S.IN_PROGRESS),
            (S.IN_PROGRESS, S.WAITING_CUSTOMER), (S.IN_PROGRESS, S.RESOLVED),
            (S.WAITING_CUSTOMER, S.IN_PROGRESS), (S.WAITING_CUSTOMER, S.RESOLVED),
            (S.RESOLVED, S.IN_PROGRESS), (S.RESOLVED, S.CLOSED),
        }

    @pytest.mark.parametrize("current, target", ALLOWED, ids=[f"{a}->{b}" for a, b in ALLOWED])
    def test_technician_makes_every_allowed_move_on_own_ticket(self, session, customer, tech, current, target):
        employee, who = tech
        ticket = ticket_in(session, customer, current, assignee=employee)
        version = ticket.version
        assert tickets.allowed_moves(who, ticket) == list(STAFF_MOVES[current])
        tickets.change_status(session, who.at("198.51.100.4"), ticket, target.value, expected_version=version,
                              now=NOW, resolution_notes="Replaced the fuser." if target == S.RESOLVED else None,
                              message="Which printer is it?" if target == S.WAITING_CUSTOMER else None)
        assert ticket.status == target
        assert ticket.version > version
        assert ticket.last_activity_at == NOW
        assert ticket.assigned_employee_id == employee.employee_id
        assert status_log(session, ticket)[-1] == (current, target, NOW, "employee", employee.employee_id)
        [event] = events(session, "ticket.status_changed", ticket)
        assert event.changes == {"status": {"old": current.value, "new": target.value}}
        assert str(event.ip_address) == "198.51.100.4"
        if target == S.RESOLVED:
            assert ticket.resolved_at == NOW and ticket.resolution_notes == "Replaced the fuser."
        elif target == S.CLOSED:
            assert ticket.closed_at == NOW and ticket.resolved_at is not None
        elif current == S.RESOLVED:
            assert ticket.resolved_at is None  # reopened
        assert db_row(session, ticket).status == target

    @pytest.mark.parametrize("current, target", REFUSED, ids=[f"{a}->{b}" for a, b in REFUSED])
    def test_moves_outside_the_table_are_invalid(self, session, customer, senior, current, target):
        ticket = ticket_in(session, customer, current, assignee=senior[0])
        version, before = ticket.version, status_log(session, ticket)
        with pytest.raises(Invalid) as caught:
            tickets.change_status(session, senior[1], ticket, target.value, expected_version=version, now=NOW,
                                  resolution_notes="Notes.")
        assert caught.value.field == "status"
        assert ticket.status == current and ticket.version == version
        assert status_log(session, ticket) == before
        assert events(session, "ticket.status_changed", ticket) == []

    def test_closed_is_final(self, session, customer, senior):
        ticket = ticket_in(session, customer, S.CLOSED)
        assert tickets.allowed_moves(senior[1], ticket) == []
        for target in S:
            with pytest.raises(Invalid):
                tickets.change_status(session, senior[1], ticket, target.value, expected_version=None, now=NOW,
                                      resolution_notes="x")

    def test_unknown_status_is_invalid(self, session, customer, tech):
        ticket = ticket_in(session, customer, S.IN_PROGRESS, assignee=tech[0])
        with pytest.raises(Invalid) as caught:
            tickets.change_status(session, tech[1], ticket, "on_fire", expected_version=None, now=NOW)
        assert caught.value.field == "status"

    @pytest.mark.parametrize("notes", [None, "", "   \n "])
    def test_resolving_needs_notes(self, session, customer, tech, notes):
        ticket = ticket_in(session, customer, S.IN_PROGRESS, assignee=tech[0])
        with pytest.raises(Invalid) as caught:
            tickets.change_status(session, tech[1], ticket, "resolved", expected_version=ticket.version, now=NOW,
                                  resolution_notes=notes)
        assert caught.value.field == "resolution_notes"
        assert ticket.status == S.IN_PROGRESS and ticket.resolved_at is None

    def test_technician_on_someone_else_s_ticket_is_forbidden(self, session, customer, tech):
        colleague, _ = staff(session)
        ticket = ticket_in(session, customer, S.ASSIGNED, assignee=colleague)
        assert tickets.allowed_moves(tech[1], ticket) == []
        with pytest.raises(Forbidden):
            tickets.change_status(session, tech[1], ticket, "in_progress", expected_version=ticket.version, now=NOW)
        assert ticket.status == S.ASSIGNED

    def test_technician_starting_an_unassigned_ticket_takes_it(self, session, customer, tech):
        employee, who = tech
        ticket = ticket_in(session, customer, S.OPEN)
        tickets.change_status(session, who, ticket, "in_progress", expected_version=ticket.version, now=NOW)
        assert ticket.assigned_employee_id == employee.employee_id and ticket.assigned_at == NOW

    @pytest.mark.parametrize("role", ["senior_technician", "admin"])
    def test_senior_and_admin_change_anyone_s_ticket(self, session, customer, tech, role):
        boss, who = staff(session, role)
        ticket = ticket_in(session, customer, S.ASSIGNED, assignee=tech[0])
        tickets.change_status(session, who, ticket, "in_progress", expected_version=ticket.version, now=NOW)
        assert ticket.status == S.IN_PROGRESS
        assert ticket.assigned_employee_id == tech[0].employee_id  # still the technician's
        assert status_log(session, ticket)[-1][3:] == ("employee", boss.employee_id)

    @pytest.mark.parametrize("role", ["project_manager", "account_manager"])
    @pytest.mark.parametrize("assigned", [False, True])
    def test_managers_may_not_change_status(self, session, customer, role, assigned):
        manager, who = staff(session, role)
        ticket = ticket_in(session, customer, S.ASSIGNED if assigned else S.OPEN,
                           assignee=manager if assigned else None)
        assert tickets.allowed_moves(who, ticket) == []
        with pytest.raises(Forbidden):
            tickets.change_status(session, who, ticket, "in_progress", expected_version=ticket.version, now=NOW)

    def test_contact_may_not_change_status(self, session, customer, contact):
        ticket = ticket_in(session, customer, S.RESOLVED, contact_id=contact.contact_id)
        with pytest.raises(Forbidden):
            tickets.change_status(session, principal(session, contact), ticket, "closed", expected_version=None,
                                  now=NOW)

    def test_reopening_clears_resolved_at_and_restarts_the_clock(self, session, contract, contact, tech):
        employee, who = tech
        ticket = tickets.open_ticket(session, principal(session, contact), new(), now=NOW)
        tickets.add_comment(session, who, ticket, "Looking.", now=NOW + H)
        tickets.change_status(session, who, ticket, "in_progress", expected_version=ticket.version, now=NOW + H)
        tickets.change_status(session, who, ticket, "resolved", expected_version=ticket.version, now=NOW + 2 * H,
                              resolution_notes="Done.")
        assert ticket.resolved_at == NOW + 2 * H
        assert ticket.sla_due_at is None and sla_state(ticket, NOW + 100 * H) == "met"
        tickets.change_status(session, who, ticket, "in_progress", expected_version=ticket.version, now=NOW + 3 * H)
        assert ticket.resolved_at is None
        assert ticket.sla_due_at == NOW + 24 * H  # the resolution deadline again (resolved time is not paused)
        assert db_row(session, ticket).resolved_at is None

    def test_waiting_on_the_customer_extends_the_resolution_due_time(self, session, contract, contact, tech):
        employee, who = tech
        ticket = tickets.open_ticket(session, principal(session, contact), new(), now=NOW)
        tickets.assign(session, who, ticket, employee.employee_id, expected_version=ticket.version, now=NOW + H)
        tickets.add_comment(session, who, ticket, "Which printer?", now=NOW + H)
        tickets.change_status(session, who, ticket, "in_progress", expected_version=ticket.version,
                              now=NOW + 2 * H)
        assert ticket.sla_due_at == NOW + 24 * H

        tickets.change_status(session, who, ticket, "waiting_customer", expected_version=ticket.version,
                              now=NOW + 3 * H, message="Which floor is the printer on?")
        assert ticket.resolution_due_at == NOW + 24 * H  # a running pause moves nothing yet
        assert ticket.sla_due_at is None and ticket.sla_at_risk_at is None
        assert sla_state(ticket, NOW + 50 * H) == "paused"

        tickets.change_status(session, who, ticket, "in_progress", expected_version=ticket.version,
                              now=NOW + 7 * H)  # waited 4 h
        assert ticket.resolution_due_at == ticket.sla_due_at == NOW + 28 * H
        assert ticket.sla_at_risk_at == NOW + 22 * H
        assert ticket.response_due_at == NOW + 4 * H

        tickets.change_status(session, who, ticket, "waiting_customer", expected_version=ticket.version,
                              now=NOW + 8 * H, message="Can you send a photo of the error?")
        tickets.change_status(session, who, ticket, "in_progress", expected_version=ticket.version,
                              now=NOW + 10 * H)  # and 2 h more: both pauses are kept
        assert ticket.resolution_due_at == NOW + 30 * H
        stored = db_row(session, ticket)
        assert (stored.resolution_due_at, stored.sla_due_at, stored.sla_at_risk_at) \
            == (NOW + 30 * H, NOW + 30 * H, NOW + 24 * H)

        tickets.change_status(session, who, ticket, "resolved", expected_version=ticket.version, now=NOW + 29 * H,
                              resolution_notes="New fuser.")
        assert sla_state(ticket, NOW + 29 * H) == "met"  # late by the raw 24 h, on time with the pauses


    def test_waiting_needs_a_message_to_the_customer(self, session, contract, contact, tech):
        """The finding: a ticket put on hold without a word read "answered, Met" beside "No replies yet"."""
        ticket = tickets.open_ticket(session, principal(session, contact), new(), now=NOW)
        tickets.change_status(session, tech[1], ticket, "in_progress", expected_version=ticket.version, now=NOW + H)
        for message in (None, "", "  \n "):
            with pytest.raises(Invalid) as caught:
                tickets.change_status(session, tech[1], ticket, "waiting_customer", expected_version=ticket.version,
                                      now=NOW + 2 * H, message=message)
            assert caught.value.field == "message"
            assert "what you need from the customer" in caught.value.message
        assert ticket.status == S.IN_PROGRESS and ticket.first_response_at is None
        assert db_row(session, ticket).first_response_at is None

    def test_the_message_is_a_public_reply_and_the_first_response(self, session, contract, contact, tech, outbox):
        ticket = tickets.open_ticket(session, principal(session, contact), new(), now=NOW)
        tickets.change_status(session, tech[1], ticket, "in_progress", expected_version=ticket.version, now=NOW + H)
        tickets.change_status(session, tech[1], ticket, "waiting_customer", expected_version=ticket.version,
                              now=NOW + 2 * H, message="  Which printer is it: upstairs or downstairs?  ")
        [reply] = tickets.public_conversation(session, ticket.ticket_id)
        assert reply[0].body == "Which printer is it: upstairs or downstairs?" and reply[2] is True
        assert reply[0].author_employee_id == tech[0].employee_id and reply[0].created_at == NOW + 2 * H
        stored = db_row(session, ticket)
        assert stored.status == S.WAITING_CUSTOMER
        assert ticket.first_response_at == stored.first_response_at == NOW + 2 * H
        assert [e.action for e in events(session, "ticket.replied", ticket)] == ["ticket.replied"]
        # Emailed like any public reply, by the worker once the change commits.
        assert [m.to for m in outbox if "upstairs or downstairs" in m.body] == [contact.email]
        # Back in progress, the stored clock agrees: the resolution deadline, not the (passed) response one.
        tickets.change_status(session, tech[1], ticket, "in_progress", expected_version=ticket.version,
                              now=NOW + 3 * H)
        stored = db_row(session, ticket)
        assert stored.sla_due_at == stored.resolution_due_at == NOW + 25 * H

    def test_an_earlier_reply_stays_the_first_response(self, session, contract, contact, tech):
        ticket = tickets.open_ticket(session, principal(session, contact), new(), now=NOW)
        tickets.add_comment(session, tech[1], ticket, "Looking into it.", now=NOW + H)
        tickets.change_status(session, tech[1], ticket, "in_progress", expected_version=ticket.version, now=NOW + H)
        tickets.change_status(session, tech[1], ticket, "waiting_customer", expected_version=ticket.version,
                              now=NOW + 4 * H, message="Did the update help?")
        assert ticket.first_response_at == db_row(session, ticket).first_response_at == NOW + H
        assert len(tickets.public_conversation(session, ticket.ticket_id)) == 2

    def test_resolving_without_a_reply_still_records_the_response(self, session, contract, contact, tech):
        """The resolution notes reach the customer: the safety net DESIGN's moves keep for resolving."""
        ticket = tickets.open_ticket(session, principal(session, contact), new(), now=NOW)
        tickets.change_status(session, tech[1], ticket, "in_progress", expected_version=ticket.version, now=NOW + H)
        tickets.change_status(session, tech[1], ticket, "resolved", expected_version=ticket.version, now=NOW + 2 * H,
                              resolution_notes="Restarted the spooler.")
        assert ticket.first_response_at == db_row(session, ticket).first_response_at == NOW + 2 * H


# --- optimistic locking ----------------------------------------------------------------------

class TestOptimisticLocking:
    def test_outdated_version_conflicts(self, session, customer, senior, tech):
        ticket = ticket_in(session, customer, S.ASSIGNED, assignee=tech[0])
        old = ticket.version
        tickets.change_status(session, senior[1], ticket, "in_progress", expected_version=old, now=NOW)
        assert ticket.version > old
        for attempt in (
            lambda: tickets.change_status(session, senior[1], ticket, "waiting_customer", expected_version=old,
                                          now=NOW, message="Is it still happening?"),
            lambda: tickets.assign(session, senior[1], ticket, senior[0].employee_id, expected_version=old, now=NOW),
            lambda: tickets.update_details(session, senior[1], ticket, priority="critical", expected_version=old,
                                           now=NOW),
        ):
            with pytest.raises(Conflict):
                attempt()
        assert ticket.status == S.IN_PROGRESS and ticket.assigned_employee_id == tech[0].employee_id
        assert ticket.priority == "medium"

    def test_the_version_handed_back_is_the_stored_one(self, session, contract, contact, tech):
        """A view renders ticket.version into the next form; it must be what the database holds
        once the request's transaction ends (the SLA clock moves at every step)."""
        ticket = tickets.open_ticket(session, principal(session, contact), new(), now=NOW)
        steps = [
            lambda v: tickets.assign(session, tech[1], ticket, tech[0].employee_id, expected_version=v, now=NOW + H),
            lambda v: tickets.add_comment(session, tech[1], ticket, "On it.", now=NOW + H),
            lambda v: tickets.change_status(session, tech[1], ticket, "in_progress", expected_version=v,
                                            now=NOW + H),
            lambda v: tickets.change_status(session, tech[1], ticket, "waiting_customer", expected_version=v,
                                            now=NOW + 2 * H, message="Which printer?"),
            lambda v: tickets.change_status(session, tech[1], ticket, "in_progress", expected_version=v,
                                            now=NOW + 3 * H),
        ]
        for step in steps:
            handed_back = ticket.version
            step(handed_back)
            handed_back = ticket.version
            assert ticket not in session.dirty
            assert db_row(session, ticket).version == handed_back == ticket.version

    def test_no_expected_version_skips_the_check(self, session, customer, senior):
        ticket = ticket_in(session, customer, S.OPEN)
        tickets.assign(session, senior[1], ticket, senior[0].employee_id, expected_version=None, now=NOW)
        assert ticket.status == S.ASSIGNED

    def test_raw_update_behind_the_orm_s_back_raises_stale_data_on_flush(self, session, customer):
        ticket = ticket_in(session, customer, S.OPEN)
        session.execute(sa.text("UPDATE support_tickets SET version = version + 1 WHERE ticket_id = :id"),
                        {"id": ticket.ticket_id})
        ticket.priority = "critical"
        with pytest.raises(StaleDataError):
            session.flush()
        session.rollback()

    def test_two_sessions_the_second_writer_fails_even_past_the_version_check(self, session, customer, tech,
                                                                               senior):
        """Two requests read the same version; the first one writes; the second one passes the
        in-memory check (its copy is as old as its form) but its UPDATE ... WHERE version = <old>
        matches nothing: SQLAlchemy raises StaleDataError on flush."""
        ticket = ticket_in(session, customer, S.ASSIGNED, assignee=tech[0])
        seen = ticket.version
        other = orm.Session(bind=session.connection(), join_transaction_mode="create_savepoint")
        try:
            theirs = other.get(SupportTicket, ticket.ticket_id)
            assert theirs is not ticket and theirs.version == seen
            tickets.change_status(other, senior[1], theirs, "in_progress", expected_version=seen, now=NOW)
            other.commit()
        finally:
            other.close()
        with pytest.raises(StaleDataError):
            tickets.change_status(session, tech[1], ticket, "in_progress", expected_version=seen, now=NOW + H)
        session.rollback()

    def test_two_connections_committed_rows_stale_data_on_flush(self, app):
        """The same on two real connections, each with its own committed transaction."""
        with app.app_context():
            engine = db.engine
        with orm.Session(engine) as setup:
            customer = Customer(company_name="Locking Race Customer", primary_contact_email="race@locking.example",
                                account_status="active", service_tier="professional")
            setup.add(customer)
            setup.flush()
            ticket = SupportTicket(ticket_number="TKT-LOCK-RACE", customer_id=customer.customer_id, title="Race",
                                   description="Two writers.", category="software")
            setup.add(ticket)
            setup.commit()
            ticket_id, customer_id = ticket.ticket_id, customer.customer_id
        try:
            with orm.Session(engine) as first, orm.Session(engine) as second:
                mine = first.get(SupportTicket, ticket_id)
                theirs = second.get(SupportTicket, ticket_id)
                assert first.connection() is not second.connection()
                assert mine.version == theirs.version == 1
                theirs.priority = "high"
                second.commit()
                mine.priority = "low"
                with pytest.raises(StaleDataError):
                    first.flush()
                first.rollback()
                assert first.get(SupportTicket, ticket_id).priority == "high"
        finally:
            with engine.begin() as connection:
                connection.execute(sa.delete(SupportTicket).where(SupportTicket.ticket_id == ticket_id))
                connection.execute(sa.delete(Customer).where(Customer.customer_id == customer_id))


# --- assign ----------------------------------------------------------------------------------

class TestAssign:
    def test_technician_takes_an_unassigned_ticket(self, session, contract, contact, tech):
        employee, who = tech
        ticket = tickets.open_ticket(session, principal(session, contact), new(), now=NOW)
        version = ticket.version
        tickets.assign(session, who, ticket, employee.employee_id, expected_version=version, now=NOW + H)
        assert ticket.status == S.ASSIGNED
        assert ticket.assigned_employee_id == employee.employee_id and ticket.assigned_at == NOW + H
        assert ticket.version > version and ticket.last_activity_at == NOW + H
        assert status_log(session, ticket)[-1] == (S.OPEN, S.ASSIGNED, NOW + H, "employee", employee.employee_id)
        [event] = events(session, "ticket.assigned", ticket)
        assert event.changes == {"assigned_employee_id": {"old": None, "new": employee.employee_id}}
        assert ticket.sla_due_at == NOW + 4 * H  # assigning is not a response

    def test_technician_may_not_assign_someone_else(self, session, customer, tech):
        colleague, _ = staff(session)
        ticket = ticket_in(session, customer, S.OPEN)
        with pytest.raises(Forbidden):
            tickets.assign(session, tech[1], ticket, colleague.employee_id, expected_version=None, now=NOW)
        assert ticket.assigned_employee_id is None and ticket.status == S.OPEN

    def test_technician_may_not_take_a_colleague_s_ticket_or_unassign(self, session, customer, tech):
        colleague, _ = staff(session)
        ticket = ticket_in(session, customer, S.ASSIGNED, assignee=colleague)
        with pytest.raises(Forbidden):
            tickets.assign(session, tech[1], ticket, tech[0].employee_id, expected_version=None, now=NOW)
        with pytest.raises(Forbidden):
            tickets.assign(session, tech[1], ticket, None, expected_version=None, now=NOW)
        assert ticket.assigned_employee_id == colleague.employee_id

    @pytest.mark.parametrize("role", ["senior_technician", "admin"])
    def test_senior_and_admin_assign_to_anyone(self, session, customer, tech, role):
        _, boss = staff(session, role)
        colleague, _ = staff(session)
        ticket = ticket_in(session, customer, S.OPEN)
        tickets.assign(session, boss, ticket, tech[0].employee_id, expected_version=ticket.version, now=NOW)
        assert (ticket.status, ticket.assigned_employee_id, ticket.assigned_at) \
            == (S.ASSIGNED, tech[0].employee_id, NOW)
        tickets.assign(session, boss, ticket, colleague.employee_id, expected_version=ticket.version, now=NOW + H)
        assert ticket.assigned_employee_id == colleague.employee_id
        assert ticket.assigned_at == NOW  # the first assignment's time
        assert [row[:2] for row in status_log(session, ticket)] == [(S.OPEN, S.ASSIGNED)]  # no second move
        assert len(events(session, "ticket.assigned", ticket)) == 2

    def test_assigning_a_ticket_in_progress_keeps_its_status(self, session, customer, tech, senior):
        ticket = ticket_in(session, customer, S.IN_PROGRESS, assignee=tech[0])
        tickets.assign(session, senior[1], ticket, senior[0].employee_id, expected_version=None, now=NOW)
        assert ticket.status == S.IN_PROGRESS and ticket.assigned_employee_id == senior[0].employee_id

    @pytest.mark.parametrize("status", ["inactive", "terminated", None])
    def test_inactive_or_unknown_employee_is_invalid(self, session, customer, senior, status):
        if status is None:
            employee_id = 2_000_000_000
        else:
            employee_id = f.make_employee(session, employment_status=status,
                                          termination_date=date(2026, 1, 1)).employee_id
        ticket = ticket_in(session, customer, S.OPEN)
        with pytest.raises(Invalid) as caught:
            tickets.assign(session, senior[1], ticket, employee_id, expected_version=None, now=NOW)
        assert caught.value.field == "assigned_employee_id"
        assert ticket.assigned_employee_id is None and ticket.status == S.OPEN

    def test_closed_ticket_cannot_be_reassigned(self, session, customer, senior):
        ticket = ticket_in(session, customer, S.CLOSED)
        with pytest.raises(Invalid):
            tickets.assign(session, senior[1], ticket, senior[0].employee_id, expected_version=None, now=NOW)

    @pytest.mark.parametrize("role", ["project_manager", "account_manager"])
    def test_managers_may_not_assign(self, session, customer, role):
        manager, who = staff(session, role)
        ticket = ticket_in(session, customer, S.OPEN)
        with pytest.raises(Forbidden):
            tickets.assign(session, who, ticket, manager.employee_id, expected_version=None, now=NOW)


# --- add_comment -----------------------------------------------------------------------------

class TestAddComment:
    def test_first_public_staff_reply_is_the_first_response(self, session, contract, contact, tech):
        employee, who = tech
        ticket = tickets.open_ticket(session, principal(session, contact), new(), now=NOW)
        note = tickets.add_comment(session, who, ticket, "Customer sounds upset.", internal=True, now=NOW + H)
        assert note.is_internal and note.author_employee_id == employee.employee_id
        assert ticket.first_response_at is None
        assert ticket.sla_due_at == NOW + 4 * H  # still the response deadline
        assert events(session, "ticket.note_added", ticket)

        reply = tickets.add_comment(session, who, ticket, "  On it.  ", now=NOW + 2 * H)
        assert not reply.is_internal and reply.body == "On it."
        assert ticket.first_response_at == NOW + 2 * H
        assert ticket.sla_due_at == NOW + 24 * H and ticket.sla_at_risk_at == NOW + 18 * H  # now resolution
        assert ticket.last_activity_at == NOW + 2 * H
        assert ticket.status == S.OPEN  # replying moves no status
        assert events(session, "ticket.replied", ticket)

        tickets.add_comment(session, who, ticket, "Still on it.", now=NOW + 3 * H)
        assert ticket.first_response_at == NOW + 2 * H
        assert db_row(session, ticket).first_response_at == NOW + 2 * H

    def test_contact_reply_reopens_a_resolved_ticket(self, session, customer, contact):
        ticket = ticket_in(session, customer, S.RESOLVED, contact_id=contact.contact_id)
        comment = tickets.add_comment(session, principal(session, contact), ticket, "It is back.", now=NOW)
        assert comment.author_contact_id == contact.contact_id and comment.author_employee_id is None
        assert ticket.status == S.IN_PROGRESS and ticket.resolved_at is None
        assert status_log(session, ticket)[-1] == (S.RESOLVED, S.IN_PROGRESS, NOW, "contact", contact.contact_id)
        [event] = events(session, "ticket.status_changed", ticket)
        assert event.changes == {"status": {"old": "resolved", "new": "in_progress"}}
        stored = db_row(session, ticket)
        assert stored.status == S.IN_PROGRESS and stored.resolved_at is None

    def test_contact_reply_ends_the_wait(self, session, contract, contact, tech):
        employee, who = tech
        ticket = tickets.open_ticket(session, principal(session, contact), new(), now=NOW)
        tickets.add_comment(session, who, ticket, "Which printer?", now=NOW + H)
        tickets.change_status(session, who, ticket, "in_progress", expected_version=ticket.version, now=NOW + H)
        tickets.change_status(session, who, ticket, "waiting_customer", expected_version=ticket.version,
                              now=NOW + H, message="Upstairs or downstairs?")
        tickets.add_comment(session, principal(session, contact), ticket, "The one upstairs.", now=NOW + 6 * H)
        assert ticket.status == S.IN_PROGRESS
        assert ticket.resolution_due_at == ticket.sla_due_at == NOW + 29 * H

    def test_contact_reply_to_work_in_progress_moves_nothing(self, session, customer, contact, tech):
        ticket = ticket_in(session, customer, S.IN_PROGRESS, assignee=tech[0], contact_id=contact.contact_id)
        before = status_log(session, ticket)
        tickets.add_comment(session, principal(session, contact), ticket, "Any news?", now=NOW)
        assert ticket.status == S.IN_PROGRESS and status_log(session, ticket) == before
        assert ticket.first_response_at is None  # a contact's message is no response

    def test_contact_may_not_write_an_internal_note(self, session, customer, contact):
        ticket = ticket_in(session, customer, S.OPEN, contact_id=contact.contact_id)
        with pytest.raises(Forbidden):
            tickets.add_comment(session, principal(session, contact), ticket, "Psst.", internal=True, now=NOW)
        assert session.scalar(sa.select(sa.func.count()).select_from(TicketComment)
                              .where(TicketComment.ticket_id == ticket.ticket_id)) == 0

    def test_contact_may_reply_only_to_tickets_it_may_see(self, session, customer, contact):
        colleague = f.make_contact_login(session, customer=customer)
        primary = f.make_contact_login(session, customer=customer, is_primary_contact=True)
        ticket = ticket_in(session, customer, S.OPEN, contact_id=colleague.contact_id)
        with pytest.raises(Forbidden):
            tickets.add_comment(session, principal(session, contact), ticket, "Me too.", now=NOW)
        tickets.add_comment(session, principal(session, primary), ticket, "Following.", now=NOW)

    def test_contact_of_suspended_customer_may_not_reply(self, session):
        customer = f.make_customer(session, account_status="suspended")
        contact = f.make_contact_login(session, customer=customer)
        ticket = ticket_in(session, customer, S.OPEN, contact_id=contact.contact_id)
        with pytest.raises(Forbidden):
            tickets.add_comment(session, principal(session, contact), ticket, "Hello?", now=NOW)

    @pytest.mark.parametrize("internal", [False, True])
    def test_closed_ticket_refuses_replies(self, session, customer, tech, internal):
        ticket = ticket_in(session, customer, S.CLOSED)
        with pytest.raises(Invalid) as caught:
            tickets.add_comment(session, tech[1], ticket, "Late.", internal=internal, now=NOW)
        assert caught.value.field == "body"

    def test_closed_ticket_refuses_a_contact_reply(self, session, customer, contact):
        ticket = ticket_in(session, customer, S.CLOSED, contact_id=contact.contact_id)
        with pytest.raises(Invalid):
            tickets.add_comment(session, principal(session, contact), ticket, "Reopen please.", now=NOW)
        assert ticket.status == S.CLOSED

    @pytest.mark.parametrize("role", ["project_manager", "account_manager"])
    @pytest.mark.parametrize("internal", [False, True])
    def test_managers_may_not_write(self, session, customer, role, internal):
        _, who = staff(session, role)
        ticket = ticket_in(session, customer, S.OPEN)
        with pytest.raises(Forbidden):
            tickets.add_comment(session, who, ticket, "Hi.", internal=internal, now=NOW)
        assert ticket.first_response_at is None

    @pytest.mark.parametrize("body", ["", "   ", None, "x" * 20_001])
    def test_empty_or_too_long_message_is_invalid(self, session, customer, tech, body):
        ticket = ticket_in(session, customer, S.OPEN)
        with pytest.raises(Invalid) as caught:
            tickets.add_comment(session, tech[1], ticket, body, now=NOW)
        assert caught.value.field == "body"

    def test_a_technician_notes_on_a_colleagues_ticket_but_does_not_answer_the_customer(self, session, customer,
                                                                                         tech):
        colleague, _ = staff(session)
        ticket = ticket_in(session, customer, S.IN_PROGRESS, assignee=colleague)
        tickets.add_comment(session, tech[1], ticket, "Seen this before: try the driver.", internal=True, now=NOW)
        assert ticket.first_response_at is None
        with pytest.raises(Forbidden, match="Leave an internal note instead"):
            tickets.add_comment(session, tech[1], ticket, "Try the driver.", now=NOW)


# --- update_details --------------------------------------------------------------------------

class TestUpdateDetails:
    def test_priority_and_estimate(self, session, customer, tech):
        ticket = ticket_in(session, customer, S.IN_PROGRESS, assignee=tech[0])
        tickets.update_details(session, tech[1], ticket, priority="critical", estimated_hours=D("2.5"),
                               expected_version=ticket.version, now=NOW)
        assert ticket.priority == "critical" and str(ticket.estimated_hours) == "2.50"
        [event] = events(session, "ticket.updated", ticket)
        assert set(event.changes) == {"priority", "estimated_hours"}

    @pytest.mark.parametrize("kw, field", [
        ({"priority": "urgent"}, "priority"), ({"estimated_hours": D("NaN")}, "estimated_hours"),
        ({"estimated_hours": D("0")}, "estimated_hours"), ({"estimated_hours": D("1000")}, "estimated_hours"),
        ({"estimated_hours": D("1e30")}, "estimated_hours"), ({"estimated_hours": D("-Infinity")}, "estimated_hours"),
    ])
    def test_bad_values_are_invalid(self, session, customer, tech, kw, field):
        ticket = ticket_in(session, customer, S.IN_PROGRESS, assignee=tech[0])
        with pytest.raises(Invalid) as caught:
            tickets.update_details(session, tech[1], ticket, expected_version=None, now=NOW, **kw)
        assert caught.value.field == field

    def test_not_on_a_colleague_s_ticket(self, session, customer, tech):
        colleague, _ = staff(session)
        ticket = ticket_in(session, customer, S.IN_PROGRESS, assignee=colleague)
        with pytest.raises(Forbidden):
            tickets.update_details(session, tech[1], ticket, priority="low", expected_version=None, now=NOW)


# --- bulk_update -----------------------------------------------------------------------------

class TestBulkUpdate:
    @pytest.mark.parametrize("role", ["technician", "project_manager", "account_manager"])
    def test_only_seniors_and_admins(self, session, customer, role):
        _, who = staff(session, role)
        ticket = ticket_in(session, customer, S.OPEN)
        with pytest.raises(Forbidden):
            tickets.bulk_update(session, who, [ticket.ticket_id], "priority", "high", now=NOW)
        assert ticket.priority == "medium"

    def test_contact_may_not(self, session, customer, contact):
        ticket = ticket_in(session, customer, S.OPEN, contact_id=contact.contact_id)
        with pytest.raises(Forbidden):
            tickets.bulk_update(session, principal(session, contact), [ticket.ticket_id], "priority", "high", now=NOW)

    @pytest.mark.parametrize("role", ["senior_technician", "admin"])
    def test_changes_several_tickets_in_one_call(self, session, customer, role):
        _, who = staff(session, role)
        batch = [ticket_in(session, customer, S.OPEN) for _ in range(3)]
        changed, skipped = tickets.bulk_update(session, who, [t.ticket_id for t in batch], "priority", "critical",
                                               now=NOW)
        assert (changed, skipped) == (3, [])
        assert all(t.priority == "critical" for t in batch)
        assert all(db_row(session, t).priority == "critical" for t in batch)

    def test_assign_many(self, session, customer, senior, tech):
        batch = [ticket_in(session, customer, S.OPEN) for _ in range(2)]
        changed, skipped = tickets.bulk_update(session, senior[1], [t.ticket_id for t in batch], "assign",
                                               str(tech[0].employee_id), now=NOW)
        assert (changed, skipped) == (2, [])
        assert all((t.status, t.assigned_employee_id) == (S.ASSIGNED, tech[0].employee_id) for t in batch)

    def test_refused_moves_are_skipped_with_a_reason_others_change(self, session, customer, senior, tech):
        movable = [ticket_in(session, customer, S.ASSIGNED, assignee=tech[0]),
                   ticket_in(session, customer, S.WAITING_CUSTOMER, assignee=tech[0], first_response_at=NOW - 9 * H)]
        closed = ticket_in(session, customer, S.CLOSED)
        fresh = ticket_in(session, customer, S.OPEN)
        stuck = ticket_in(session, customer, S.IN_PROGRESS, assignee=tech[0])  # already there: not a move
        ids = [t.ticket_id for t in (*movable, closed, fresh, stuck)]
        changed, skipped = tickets.bulk_update(session, senior[1], ids, "status", "in_progress", now=NOW)
        assert changed == 3
        assert len(skipped) == 2
        assert skipped[0].startswith(closed.ticket_number + ": ") and "closed" in skipped[0]
        assert skipped[1].startswith(stuck.ticket_number + ": ")
        assert all(t.status == S.IN_PROGRESS for t in (*movable, fresh))
        assert closed.status == S.CLOSED
        assert db_row(session, closed).status == S.CLOSED
        assert status_log(session, closed) == []

    def test_resolving_many_needs_notes(self, session, customer, senior, tech):
        batch = [ticket_in(session, customer, S.IN_PROGRESS, assignee=tech[0]) for _ in range(2)]
        changed, skipped = tickets.bulk_update(session, senior[1], [t.ticket_id for t in batch], "status",
                                               "resolved", now=NOW)
        assert changed == 0 and len(skipped) == 2
        assert all(t.status == S.IN_PROGRESS for t in batch)
        changed, skipped = tickets.bulk_update(session, senior[1], [t.ticket_id for t in batch], "status",
                                               "resolved", now=NOW, resolution_notes="Vendor outage over.")
        assert (changed, skipped) == (2, [])
        assert all(t.resolution_notes == "Vendor outage over." and t.resolved_at == NOW for t in batch)

    def test_waiting_is_refused_in_bulk_with_the_reason(self, session, customer, senior, tech):
        batch = [ticket_in(session, customer, S.IN_PROGRESS, assignee=tech[0]) for _ in range(2)]
        with pytest.raises(Invalid) as caught:
            tickets.bulk_update(session, senior[1], [t.ticket_id for t in batch], "status", "waiting_customer",
                                now=NOW)
        assert caught.value.field == "value" and "from its own page" in caught.value.message
        assert all(t.status == S.IN_PROGRESS and t.first_response_at is None for t in batch)

    def test_bad_requests_are_invalid(self, session, customer, senior):
        ticket = ticket_in(session, customer, S.OPEN)
        with pytest.raises(Invalid) as caught:
            tickets.bulk_update(session, senior[1], [], "priority", "high", now=NOW)
        assert caught.value.field == "ticket_ids"
        with pytest.raises(Invalid) as caught:
            tickets.bulk_update(session, senior[1], [ticket.ticket_id], "delete", "", now=NOW)
        assert caught.value.field == "action"
        with pytest.raises(Invalid) as caught:
            tickets.bulk_update(session, senior[1], [ticket.ticket_id], "assign", "abc", now=NOW)
        assert caught.value.field == "value"
        assert ticket.assigned_employee_id is None


# --- close_resolved --------------------------------------------------------------------------

class TestCloseResolved:
    def test_closes_tickets_resolved_more_than_seven_days_ago(self, session, customer):
        def resolved(days_ago):
            at = NOW - timedelta(days=days_ago)
            return ticket_in(session, customer, S.RESOLVED, created_at=at - H, resolved_at=at,
                             first_response_at=at - H)

        old, exactly_seven, recent = resolved(8), resolved(7), resolved(6)
        still_open = ticket_in(session, customer, S.IN_PROGRESS, created_at=NOW - timedelta(days=30))
        assert tickets.close_resolved(session, Principal.system("test scheduler"), now=NOW) == 1
        assert old.status == S.CLOSED and old.closed_at == NOW and old.last_activity_at == NOW
        assert status_log(session, old) == [(S.RESOLVED, S.CLOSED, NOW, "system", None)]
        [event] = events(session, "ticket.status_changed", old)
        assert event.actor_type == "system" and event.changes == {"status": {"old": "resolved", "new": "closed"}}
        assert db_row(session, old).status == S.CLOSED
        for untouched in (exactly_seven, recent):
            assert untouched.status == S.RESOLVED and untouched.closed_at is None
            assert status_log(session, untouched) == []
        assert still_open.status == S.IN_PROGRESS
        assert tickets.close_resolved(session, Principal.system("test scheduler"), now=NOW) == 0  # nothing left to do

