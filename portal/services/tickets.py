"""Tickets: opening, status moves, assignment, the conversation, bulk changes, auto-close.

Every function takes the principal first, checks the policy, writes, records the status log and
the audit log, and recomputes the SLA clock. Nothing here commits. A change made against a
version of the ticket that is no longer current raises Conflict (optimistic locking).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy import orm

from portal.models import (
    Contact,
    Customer,
    Employee,
    EmploymentStatus,
    SupportTicket,
    TicketCategory,
    TicketComment,
    TicketPriority,
    TicketStatus,
    TicketStatusChange,
)
from portal.services import clock, events, policy
from portal.services.errors import Conflict, Forbidden, Invalid, NotFound
from portal.services.numbering import next_number, number_pattern, typed_ticket_number
from portal.services.sla import active_terms, refresh_sla, sla_state
from portal.services.statuses import TICKET_WORKER_ROLES, bounded_count, is_unresolved

S = TicketStatus
# Moves staff may make (DESIGN.md: open -> assigned -> in_progress <-> waiting_customer -> resolved -> closed;
# a resolved ticket can be reopened; closed is final).
STAFF_MOVES: dict[TicketStatus, tuple[TicketStatus, ...]] = {
    S.OPEN: (S.ASSIGNED, S.IN_PROGRESS),
    S.ASSIGNED: (S.IN_PROGRESS,),
    S.IN_PROGRESS: (S.WAITING_CUSTOMER, S.RESOLVED),
    S.WAITING_CUSTOMER: (S.IN_PROGRESS, S.RESOLVED),
    S.RESOLVED: (S.IN_PROGRESS, S.CLOSED),
    S.CLOSED: (),
}
MOVE_LABELS = {
    S.ASSIGNED: "Assign", S.IN_PROGRESS: "Start work", S.WAITING_CUSTOMER: "Wait for customer",
    S.RESOLVED: "Resolve", S.CLOSED: "Close",
}
AUTO_CLOSE_AFTER = timedelta(days=7)
MAX_BULK = 500
MAX_BODY = 20_000
MAX_ESTIMATE = Decimal("1000")  # estimated_hours is NUMERIC(5, 2)


@dataclass(frozen=True)
class NewTicket:
    title: str
    description: str
    category: TicketCategory | None
    priority: TicketPriority | None = None  # None: medium
    customer_id: int | None = None  # staff only: contacts open tickets for their own customer
    contact_id: int | None = None


def visible_ticket(session, principal: policy.Principal, ticket_id: int, *, lock: bool = False) -> SupportTicket:
    """The ticket if the principal may see it.

    :raises NotFound: no such ticket, or one of another customer (the same answer on purpose).
    """
    query = sa.select(SupportTicket).where(SupportTicket.ticket_id == ticket_id)
    if principal.is_contact:
        query = query.where(SupportTicket.customer_id == principal.customer_id)
        if not policy.may_see_all_company_tickets(principal):
            query = query.where(SupportTicket.contact_id == principal.contact_id)
    if lock:
        query = query.with_for_update()
    ticket = session.scalar(query)
    if ticket is None:
        raise NotFound("No such ticket.")
    return ticket


def staff_ticket(session, principal: policy.Principal, ticket_id: int) -> SupportTicket:
    """A ticket with what its staff page shows (customer, contact, contract, assignee, the conversation).

    :raises NotFound: no such ticket. :raises Forbidden: not staff.
    """
    if not policy.may_view_queue(principal):
        raise Forbidden("Only staff read the whole ticket.")
    ticket = session.scalar(sa.select(SupportTicket).where(SupportTicket.ticket_id == ticket_id).options(
        orm.joinedload(SupportTicket.customer), orm.joinedload(SupportTicket.contact),
        orm.joinedload(SupportTicket.contract), orm.joinedload(SupportTicket.assigned_employee),
        orm.selectinload(SupportTicket.comments).joinedload(TicketComment.author_employee),
        orm.selectinload(SupportTicket.comments).joinedload(TicketComment.author_contact)))
    if ticket is None:
        raise NotFound("No such ticket.")
    return ticket


def public_conversation(session, ticket_id: int) -> list[tuple[TicketComment, str, bool]]:
    """(comment, author's name, written by staff) of a ticket's public replies, oldest first.

    Internal notes are excluded here in SQL (and by row-level security for contacts). Staff
    appear by name only: contacts may read no other employee column.
    """
    rows = session.execute(
        sa.select(TicketComment, Employee.first_name, Employee.last_name, Contact.first_name, Contact.last_name)
        .outerjoin(Employee, Employee.employee_id == TicketComment.author_employee_id)
        .outerjoin(Contact, Contact.contact_id == TicketComment.author_contact_id)
        .where(TicketComment.ticket_id == ticket_id, TicketComment.is_internal.is_(False))
        .order_by(TicketComment.created_at, TicketComment.comment_id)).all()
    return [(comment, f"{ef} {el}" if ef else f"{cf} {cl}", ef is not None) for comment, ef, el, cf, cl in rows]


def assignee_name(session, ticket: SupportTicket) -> str | None:
    """Who works on the ticket, by name only (all a contact may read of an employee); None if nobody yet."""
    if ticket.assigned_employee_id is None:
        return None
    return session.scalar(sa.select(Employee.first_name + " " + Employee.last_name)
                          .where(Employee.employee_id == ticket.assigned_employee_id))


def _check_version(ticket: SupportTicket, expected_version: int | None) -> None:
    if expected_version is not None and ticket.version != expected_version:
        raise Conflict("Someone else changed this ticket since you opened it. Here it is as it is now; "
                       "check it and make your change again.")


def _log_move(session, ticket: SupportTicket, to: TicketStatus, principal: policy.Principal, now: datetime) -> None:
    actor = principal.actor
    session.add(TicketStatusChange(ticket_id=ticket.ticket_id, from_status=ticket.status, to_status=to,
                                   changed_at=now, actor_type=actor.type, actor_id=actor.id))
    ticket.status = to


def _clean_text(value: str | None, field: str, label: str, max_length: int) -> str:
    text = (value or "").strip()
    if not text:
        raise Invalid(f"Enter the {label}.", field)
    if len(text) > max_length:
        raise Invalid(f"The {label} can be at most {max_length:,} characters.", field)
    return text


def _choice(value: str | None, enum_class, field: str, label: str):
    try:
        return enum_class(value)
    except ValueError:
        raise Invalid(f"Choose a {label} from the list.", field) from None


def _checked_fields(data: NewTicket) -> tuple[dict, dict[str, str]]:
    errors: dict[str, str] = {}
    values = {}
    for name, check in (
        ("title", lambda: _clean_text(" ".join((data.title or "").split()), "title", "title", 255)),  # one line
        ("description", lambda: _clean_text(data.description, "description", "description", MAX_BODY)),
        ("category", lambda: _choice(data.category, TicketCategory, "category", "category")),
        ("priority", lambda: _choice(data.priority or "medium", TicketPriority, "priority", "priority")),
    ):
        try:
            values[name] = check()
        except Invalid as error:
            errors[name] = error.message
    return values, errors


def ticket_field_errors(data: NewTicket) -> dict[str, str]:
    """What is wrong with a new ticket's own fields, without opening it (no number is used up)."""
    return _checked_fields(data)[1]


def open_ticket(session, principal: policy.Principal, data: NewTicket, *,
                now: datetime | None = None) -> SupportTicket:
    """Open a ticket: a contact for its own customer, or staff on behalf of a customer's contact.

    The number comes from the sequence, the contract is the customer's active one on the day,
    and the SLA clock starts.
    :raises Forbidden: the principal may not open tickets.
    :raises Invalid: a field is missing or wrong (the field is named).
    """
    now = now or clock.now()
    values, errors = _checked_fields(data)
    if principal.is_contact:
        if not policy.may_open_ticket(principal):
            raise Forbidden("Your login may follow tickets but not open them. Ask your company's primary contact.")
        customer_id, contact_id = principal.customer_id, principal.contact_id
    else:
        if not policy.may_open_ticket_for_customer(principal):
            raise Forbidden("Your role may not open tickets.")
        customer_id, contact_id = data.customer_id, data.contact_id
        # The customer, and the contact's customer, in one statement.
        found = session.execute(
            sa.select(Customer.customer_id, Contact.customer_id.label("contact_customer_id")).select_from(Customer)
            .outerjoin(Contact, Contact.contact_id == contact_id).where(Customer.customer_id == customer_id)
        ).first() if customer_id else None
        if found is None:
            errors["customer_id"] = "Choose the customer."
        if contact_id and (found is None or found.contact_customer_id != customer_id):
            errors["contact_id"] = "Choose a contact of this customer."
    if errors:
        first = next(iter(errors))
        raise Invalid(errors[first], first, errors)

    ticket = SupportTicket(
        ticket_number=next_number(session, "ticket", now.date()),
        customer_id=customer_id, contact_id=contact_id, title=values["title"], description=values["description"],
        category=values["category"], priority=values["priority"], status=S.OPEN, created_at=now,
        last_activity_at=now,
    )
    terms = active_terms(session, customer_id, now.date())  # the contract in force and its SLA terms
    ticket.contract_id = terms.contract_id if terms else None
    # The log it is about to get and the terms just read: the deadlines go in the INSERT.
    refresh_sla(session, ticket, changes=[(now, S.OPEN)], terms=terms)
    session.add(ticket)
    session.flush()
    actor = principal.actor
    session.add(TicketStatusChange(ticket_id=ticket.ticket_id, from_status=None, to_status=S.OPEN, changed_at=now,
                                   actor_type=actor.type, actor_id=actor.id))
    events.emit(session, principal, "ticket.created", ticket, _ticket_payload(ticket),
                changes={"ticket_number": (None, ticket.ticket_number), "priority": (None, ticket.priority)})
    return ticket


def _ticket_payload(ticket: SupportTicket) -> dict:
    """The seed's `ticket.created` webhook fields, which the other ticket events carry too."""
    return {"ticket_id": ticket.ticket_id, "ticket_number": ticket.ticket_number, "customer_id": ticket.customer_id,
            "priority": TicketPriority(ticket.priority).value, "status": TicketStatus(ticket.status).value,
            "assigned_employee_id": ticket.assigned_employee_id}


def allowed_moves(principal: policy.Principal, ticket: SupportTicket) -> list[TicketStatus]:
    """The status moves this person may make on this ticket now (for the buttons)."""
    if not policy.may_update_ticket(principal, ticket):
        return []
    return list(STAFF_MOVES[TicketStatus(ticket.status)])


def change_status(session, principal: policy.Principal, ticket: SupportTicket, to: str | TicketStatus, *,
                  expected_version: int | None, now: datetime | None = None,
                  resolution_notes: str | None = None, message: str | None = None) -> SupportTicket:
    """Move a ticket to another status.

    Assigning an unassigned ticket assigns it to the mover; resolving needs resolution notes;
    waiting for the customer needs a `message` saying what is awaited, posted as a public reply
    (so the customer is told, and it is the first response if there was none); reopening clears
    the resolution time.
    :raises Forbidden: the principal may not change this ticket.
    :raises Invalid: the move is not allowed from the current status, or notes or message are missing.
    :raises Conflict: the ticket changed since `expected_version`.
    """
    now = now or clock.now()
    if not policy.may_update_ticket(principal, ticket):
        raise Forbidden("Only the assigned technician, a senior technician or an admin may change this ticket.")
    _check_version(ticket, expected_version)
    target = _choice(to, TicketStatus, "status", "status")
    current = TicketStatus(ticket.status)
    if target not in STAFF_MOVES[current]:
        raise Invalid(f"A {current.value.replace('_', ' ')} ticket cannot move to "
                      f"{target.value.replace('_', ' ')}.", "status")
    if target == S.RESOLVED:
        ticket.resolution_notes = _clean_text(resolution_notes, "resolution_notes", "resolution notes", MAX_BODY)
    if principal.is_client and target == S.WAITING_CUSTOMER:
        # The question to the customer is a public reply written by a person (its author is shown
        # and emailed); an API client has no name the customer would recognise.
        raise Invalid("Waiting for the customer needs a person's message to them: move the ticket there in the "
                      "staff pages.", "status")
    if (target in (S.ASSIGNED, S.IN_PROGRESS) and ticket.assigned_employee_id is None
            and principal.employee_id is None):
        raise Invalid("Assign the ticket to an employee first (assigned_employee_id): a client cannot take it "
                      "itself.", "assigned_employee_id")
    if target == S.WAITING_CUSTOMER:
        if not (message or "").strip():
            raise Invalid("Write what you need from the customer: it is sent to them as a reply.", "message")
        text = _clean_text(message, "message", "message to the customer", MAX_BODY)
        # Only a public reply is a response: the question itself is that reply (and its email).
        add_comment(session, principal, ticket, text, now=now)
    if target in (S.ASSIGNED, S.IN_PROGRESS) and ticket.assigned_employee_id is None:
        ticket.assigned_employee_id = principal.employee_id
        ticket.assigned_at = now
    if target == S.RESOLVED and ticket.first_response_at is None:
        # The resolution notes reach the customer (page and email): a response, at the move's time
        # (the safety net of migration 0003, which 0011 keeps for resolving only).
        ticket.first_response_at = now
    if target == S.RESOLVED:
        ticket.resolved_at = now
    elif target == S.CLOSED:
        ticket.closed_at = now
    elif current == S.RESOLVED:
        ticket.resolved_at = None
    _log_move(session, ticket, target, principal, now)
    ticket.last_activity_at = now
    session.flush()
    refresh_sla(session, ticket)
    events.emit(session, principal, "ticket.status_changed", ticket,
                {**_ticket_payload(ticket), "from": current.value, "to": target.value},
                changes={"status": (current, target)})
    return ticket


def assign(session, principal: policy.Principal, ticket: SupportTicket, employee_id: int | None, *,
           expected_version: int | None, now: datetime | None = None) -> SupportTicket:
    """Assign a ticket (None unassigns); an open ticket becomes assigned.

    :raises Forbidden: technicians only take unassigned tickets for themselves.
    :raises Invalid: no such active employee, or the ticket is closed.
    :raises Conflict: the ticket changed since `expected_version`.
    """
    now = now or clock.now()
    if not policy.may_assign_ticket(principal, ticket, employee_id):
        raise Forbidden("Technicians take unassigned tickets for themselves; seniors and admins assign to anyone.")
    _check_version(ticket, expected_version)
    if ticket.status == S.CLOSED:
        raise Invalid("A closed ticket cannot be reassigned.", "assigned_employee_id")
    if employee_id is not None:
        employee = session.get(Employee, employee_id)
        if (employee is None or employee.employment_status != EmploymentStatus.ACTIVE
                or employee.role not in TICKET_WORKER_ROLES):
            raise Invalid("Choose an active technician, senior technician or admin.", "assigned_employee_id")
    before = ticket.assigned_employee_id
    ticket.assigned_employee_id = employee_id
    if employee_id is not None and ticket.assigned_at is None:
        ticket.assigned_at = now
    if employee_id is not None and ticket.status == S.OPEN:
        _log_move(session, ticket, S.ASSIGNED, principal, now)
    elif employee_id is None and ticket.status == S.ASSIGNED:
        _log_move(session, ticket, S.OPEN, principal, now)  # nobody has it any more: back in the open pile
    ticket.last_activity_at = now
    session.flush()
    refresh_sla(session, ticket)
    events.emit(session, principal, "ticket.assigned", ticket, _ticket_payload(ticket),
                changes={"assigned_employee_id": (before, employee_id)})
    return ticket


UNCHANGED = object()  # update_details: leave the estimate as it is


def update_details(session, principal: policy.Principal, ticket: SupportTicket, *,
                   priority: TicketPriority | None = None, estimated_hours: Decimal | None | object = UNCHANGED,
                   expected_version: int | None, now: datetime | None = None) -> SupportTicket:
    """Change the priority (None: keep it) and/or the estimate (None clears it; UNCHANGED keeps it).

    :raises Forbidden: not this person's ticket to change.
    :raises Invalid: an unknown priority, or an estimate that is not a positive number of hours.
    :raises Conflict: the ticket changed since `expected_version`.
    """
    if not policy.may_update_ticket(principal, ticket):
        raise Forbidden("Only the assigned technician, a senior technician or an admin may change this ticket.")
    _check_version(ticket, expected_version)
    changes = {}
    if priority is not None:
        new = _choice(priority, TicketPriority, "priority", "priority")
        if new != ticket.priority:
            changes["priority"] = (ticket.priority, new)
            ticket.priority = new
    if estimated_hours is not UNCHANGED:
        hours = estimated_hours
        if hours is not None:
            if not hours.is_finite():
                raise Invalid("Enter the estimate in hours, like 2.5.", "estimated_hours")
            # Range first: quantize raises InvalidOperation on 1e30 (more digits than the context
            # holds); and again after rounding, which can carry 999.999 up to 1000.00.
            if abs(hours) < MAX_ESTIMATE:
                hours = hours.quantize(Decimal("0.01"))
            if not (Decimal("0.01") <= hours < MAX_ESTIMATE):
                raise Invalid("The estimate must be at least 0.01 and under 1000 hours.", "estimated_hours")
        if hours != ticket.estimated_hours:
            changes["estimated_hours"] = (ticket.estimated_hours, hours)
            ticket.estimated_hours = hours
    if changes:
        ticket.last_activity_at = now or clock.now()
        session.flush()
        events.emit(session, principal, "ticket.updated", ticket, _ticket_payload(ticket), changes=changes)
    return ticket


def add_comment(session, principal: policy.Principal, ticket: SupportTicket, body: str, *, internal: bool = False,
                now: datetime | None = None) -> TicketComment:
    """Add a public reply or (staff only) an internal note.

    A staff member's first public reply is the ticket's first response. A contact's reply takes a
    resolved or waiting ticket back to in progress.
    :raises Forbidden: contacts write no internal notes; a read-only or other person may not reply.
    :raises Invalid: an empty or too long message, or a closed ticket.
    """
    now = now or clock.now()
    text = _clean_text(body, "body", "message", MAX_BODY)
    if ticket.status == S.CLOSED:
        raise Invalid("This ticket is closed. Open a new ticket and mention this one's number.", "body")
    moved_from = None
    comment = TicketComment(ticket_id=ticket.ticket_id, body=text, is_internal=internal, created_at=now)
    if principal.is_contact:
        if internal:
            raise Forbidden("Only staff write internal notes.")
        if not policy.may_reply_to_ticket(principal, ticket):
            raise Forbidden("You may not reply to this ticket.")
        comment.author_contact_id = principal.contact_id
        if ticket.status in (S.RESOLVED, S.WAITING_CUSTOMER):
            moved_from = TicketStatus(ticket.status)
            if moved_from == S.RESOLVED:
                ticket.resolved_at = None
            _log_move(session, ticket, S.IN_PROGRESS, principal, now)
    else:
        if principal.is_client:
            raise Forbidden("API clients read the conversation; people write in it, in the staff pages.")
        if not policy.may_work_tickets(principal):
            raise Forbidden("Your role reads tickets but does not write in them.")
        if not internal and not policy.may_update_ticket(principal, ticket):
            # Anyone who works tickets may leave an internal note; only the ticket's owner (or a
            # senior or admin) answers the customer.
            raise Forbidden("Only the assigned technician, a senior technician or an admin replies to the "
                            "customer on this ticket. Leave an internal note instead.")
        comment.author_employee_id = principal.employee_id
        if not internal and ticket.first_response_at is None:
            ticket.first_response_at = now
    session.add(comment)
    ticket.last_activity_at = now
    session.flush()
    refresh_sla(session, ticket)
    if moved_from is not None:
        events.emit(session, principal, "ticket.status_changed", ticket,
                    {**_ticket_payload(ticket), "from": moved_from.value, "to": S.IN_PROGRESS.value},
                    changes={"status": (moved_from, S.IN_PROGRESS)})
    events.emit(session, principal, "ticket.note_added" if internal else "ticket.replied", ticket,
                {**_ticket_payload(ticket), "comment_id": comment.comment_id, "internal": internal})
    return comment


BULK_ACTIONS = ("assign", "priority", "status")


def bulk_update(session, principal: policy.Principal, ticket_ids: list[int], action: str, value: str, *,
                now: datetime | None = None, resolution_notes: str | None = None) -> tuple[int, list[str]]:
    """Apply one change to many tickets in one transaction: (how many changed, why the others did not).

    :raises Forbidden: only seniors and admins make bulk changes.
    :raises Invalid: no ticket chosen, or an unknown action.
    """
    if not policy.may_bulk_update_tickets(principal):
        raise Forbidden("Only senior technicians and admins change many tickets at once.")
    if not ticket_ids:
        raise Invalid("Choose at least one ticket.", "ticket_ids")
    if len(ticket_ids) > MAX_BULK:
        raise Invalid(f"Choose at most {MAX_BULK} tickets at once.", "ticket_ids")
    if action not in BULK_ACTIONS:
        raise Invalid("Choose what to change.", "action")
    if action == "status" and value == S.WAITING_CUSTOMER.value:
        # Each customer must be told what is awaited from them; one message for many tickets would not say it.
        raise Invalid("Waiting for the customer needs a message to that customer saying what you need: "
                      "move each ticket from its own page.", "value")
    now = now or clock.now()
    tickets = session.scalars(sa.select(SupportTicket).where(SupportTicket.ticket_id.in_(ticket_ids))
                              .order_by(SupportTicket.ticket_id).with_for_update()).all()
    changed = 0
    missing = sorted(set(ticket_ids) - {t.ticket_id for t in tickets})
    skipped = [f"ticket {ticket_id}: no such ticket" for ticket_id in missing]
    for ticket in tickets:
        try:
            with session.begin_nested():
                if action == "assign":
                    assign(session, principal, ticket, int(value) if value else None, expected_version=None,
                           now=now)
                elif action == "priority":
                    update_details(session, principal, ticket, priority=value, expected_version=None, now=now)
                else:
                    change_status(session, principal, ticket, value, expected_version=None, now=now,
                                  resolution_notes=resolution_notes)
            changed += 1
        except (Invalid, Forbidden) as error:
            skipped.append(f"{ticket.ticket_number}: {error.message}")
        except ValueError:
            raise Invalid("Choose an employee from the list.", "value") from None
    return changed, skipped


def close_resolved(session, principal: policy.Principal, *, now: datetime | None = None) -> int:
    """Close tickets resolved more than 7 days ago (the worker runs this); returns how many.

    Idempotent: a second run finds nothing more to close. Tickets another transaction holds are
    left for the next run.
    :raises Forbidden: only the system (or an admin, by hand) runs the scheduled scans.
    """
    if not policy.may_run_scheduled_work(principal):
        raise Forbidden("Only the scheduler or an administrator closes resolved tickets in bulk.")
    now = now or clock.now()
    tickets = session.scalars(
        sa.select(SupportTicket).where(SupportTicket.status == S.RESOLVED,
                                       SupportTicket.resolved_at < now - AUTO_CLOSE_AFTER)
        .order_by(SupportTicket.ticket_id).with_for_update(skip_locked=True)).all()
    for ticket in tickets:
        _log_move(session, ticket, S.CLOSED, principal, now)
        ticket.closed_at = now
        ticket.last_activity_at = now
    session.flush()
    for ticket in tickets:
        events.emit(session, principal, "ticket.status_changed", ticket,
                    {**_ticket_payload(ticket), "from": S.RESOLVED.value, "to": S.CLOSED.value},
                    changes={"status": (S.RESOLVED, S.CLOSED)})
    return len(tickets)


# --- the customer portal -----------------------------------------------------------------------

PORTAL_PER_PAGE = 20
PORTAL_STATUSES = {
    "open": "Open (not yet resolved)",
    "waiting_customer": "Waiting for your answer",
    "resolved": "Resolved",
    "closed": "Closed",
    "all": "All",
}
SEARCH_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class PortalTicketFilters:
    status: str = "open"
    q: str = ""
    submitter: int | None = None  # a colleague's contact id (primary contacts only)
    page: int = 1

    @classmethod
    def from_args(cls, args) -> "PortalTicketFilters":
        """From the query string; anything unknown falls back to the default (never an error)."""
        status = (args.get("status") or "open").strip()
        try:
            submitter = int(args.get("submitter", ""))
        except ValueError:
            submitter = None
        try:
            page = int(args.get("page", "1"))
        except ValueError:
            page = 1
        return cls(status=status if status in PORTAL_STATUSES else "open", q=(args.get("q") or "").strip()[:200],
                   submitter=submitter if submitter and 0 < submitter < 2**31 else None,
                   page=min(max(page, 1), 10_000))

    def as_args(self, **override) -> dict:
        merged = replace(self, **override)
        defaults = PortalTicketFilters()
        return {name: getattr(merged, name) for name in self.__dataclass_fields__
                if getattr(merged, name) != getattr(defaults, name)}


@dataclass
class PortalTicketPage:
    rows: list[tuple[SupportTicket, str | None, str | None]]  # (ticket, submitter's name, SLA state)
    total: int
    page: int
    pages: int
    colleagues: list[tuple[int, str]]  # the submitter filter's choices (primary contacts), else []
    more: bool = False  # more than `total` (statuses.COUNT_CAP): shown as "10,000+"


def _search_condition(q: str):
    """Number, or words as the contact types them (each word a prefix), over title and description only."""
    number = typed_ticket_number(q)
    if number:
        return SupportTicket.ticket_number == number
    if re.fullmatch(r"[0-9]{1,9}", q.strip()):  # the number's last part, as people quote it: "48"
        return SupportTicket.ticket_number.like(number_pattern("ticket", int(q)))
    words = SEARCH_WORD.findall(q)[:10]
    if not words:
        return None
    query = " & ".join(f"{word}:*" for word in words)
    return SupportTicket.public_search_vector.op("@@")(sa.func.to_tsquery("english", query))


def contact_tickets(session, principal: policy.Principal, filters: PortalTicketFilters, *, now: datetime,
                    per_page: int = PORTAL_PER_PAGE) -> PortalTicketPage:
    """A contact's tickets (a primary contact's: the company's), latest activity first; three queries."""
    t = SupportTicket
    where = [t.customer_id == principal.customer_id]
    company_wide = policy.may_see_all_company_tickets(principal)
    if not company_wide:
        where.append(t.contact_id == principal.contact_id)
    elif filters.submitter:
        where.append(t.contact_id == filters.submitter)
    if filters.status == "open":
        where.append(is_unresolved(t.status))  # idx_tickets_customer_open
    elif filters.status != "all":
        where.append(t.status == filters.status)
    if filters.q:
        condition = _search_condition(filters.q)
        if condition is not None:
            where.append(condition)
    # Counted up to 10,000 (a large company's whole history is never counted): "10,000+".
    total, more = bounded_count(session, sa.select(t.ticket_id).where(*where))
    pages = max(1, -(-total // per_page))
    page = min(filters.page, pages)
    rows = session.execute(
        sa.select(t, Contact.first_name + " " + Contact.last_name)
        .outerjoin(Contact, Contact.contact_id == t.contact_id)
        .where(*where).order_by(t.last_activity_at.desc(), t.ticket_id.desc())
        .limit(per_page).offset((page - 1) * per_page)).all()
    colleagues = []
    if company_wide:
        colleagues = [tuple(row) for row in session.execute(
            sa.select(Contact.contact_id, Contact.first_name + " " + Contact.last_name)
            .where(Contact.customer_id == principal.customer_id).order_by(Contact.first_name, Contact.last_name))]
    return PortalTicketPage(rows=[(ticket, name, sla_state(ticket, now)) for ticket, name in rows],
                            total=total, page=page, pages=pages, colleagues=colleagues, more=more)


def rate_ticket(session, principal: policy.Principal, ticket: SupportTicket, rating: int | None,
                comment: str | None, *, now: datetime | None = None) -> SupportTicket:
    """The opener's one 1-5 rating of a resolved ticket, with an optional comment.

    :raises Forbidden: not the opener, not resolved yet, or rated already.
    :raises Invalid: no rating from 1 to 5, or a comment over 2,000 characters.
    """
    if ticket.customer_satisfaction is not None:
        raise Forbidden("You rated this ticket already. Thank you!")
    if not policy.may_rate_ticket(principal, ticket):
        raise Forbidden("Only the person who opened the ticket rates it, once it is resolved.")
    value = rating if isinstance(rating, int) else 0
    if not 1 <= value <= 5:
        raise Invalid("Choose a rating from 1 to 5.", "customer_satisfaction")
    text = (comment or "").strip()
    if len(text) > 2000:
        raise Invalid("The comment can be at most 2,000 characters.", "satisfaction_comment")
    ticket.customer_satisfaction = value
    ticket.satisfaction_comment = text or None
    session.flush()
    events.emit(session, principal, "ticket.rated", ticket, {"ticket_id": ticket.ticket_id, "rating": value},
                changes={"customer_satisfaction": (None, value)})
    return ticket
