"""The SLA clock, in one function (DESIGN.md "Tickets").

Response due = created + the contract's response hours. Resolution due = created + resolution
hours + every period the ticket spent waiting on the customer (the clock stops then). The due
times are stored on the ticket and recomputed from its status log at every move, so no paused
time is lost; a business-hours calendar in the customer's time zone will replace `_add_hours`.
A ticket without a contract has no SLA.

Contacts' transactions store these times too (a reply reopens a ticket): the database checks what
they write against its SQL twin of `compute_sla` and `paused_time` (the trigger
support_ticket_contact_guard of migration 0009). Change both together.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from portal.models import ServiceContract, SupportTicket, TicketStatus, TicketStatusChange

AT_RISK_SHARE = 0.25  # "at risk" once under 25 % of the deadline's time is left
PAUSED = TicketStatus.WAITING_CUSTOMER
DONE = (TicketStatus.RESOLVED, TicketStatus.CLOSED)


@dataclass(frozen=True)
class SlaClock:
    response_due_at: datetime | None = None
    resolution_due_at: datetime | None = None
    sla_due_at: datetime | None = None
    sla_at_risk_at: datetime | None = None


def _add_hours(start: datetime, hours: float) -> datetime:
    return start + timedelta(hours=hours)


def paused_time(changes: Iterable[tuple[datetime, TicketStatus]]) -> timedelta:
    """Total time spent in waiting_customer in the closed pauses of `changes` ((at, to_status), in order).

    A pause still running counts from when it ends: while a ticket waits, its clock is stopped.
    """
    total = timedelta()
    waiting_since: datetime | None = None
    for at, status in changes:
        if status == PAUSED and waiting_since is None:
            waiting_since = at
        elif status != PAUSED and waiting_since is not None:
            total += at - waiting_since
            waiting_since = None
    return total


def compute_sla(*, created_at: datetime, status: TicketStatus, first_response_at: datetime | None,
                response_hours: int | None, resolution_hours: int | None,
                changes: Iterable[tuple[datetime, TicketStatus]]) -> SlaClock:
    """The stored SLA times of a ticket, from its contract's hours and its status log."""
    if response_hours is None or resolution_hours is None:
        return SlaClock()
    response_due = _add_hours(created_at, response_hours)
    resolution_due = _add_hours(created_at, resolution_hours) + paused_time(changes)
    if status == PAUSED or status in DONE:
        return SlaClock(response_due, resolution_due)
    if first_response_at is None and response_due <= resolution_due:
        due, window = response_due, response_hours
    else:
        due, window = resolution_due, resolution_hours
    return SlaClock(response_due, resolution_due, due, due - timedelta(hours=window * AT_RISK_SHARE))


def refresh_sla(session, ticket: SupportTicket) -> None:
    """Recompute the ticket's stored SLA times from its contract and status log (call after every move)."""
    hours = None
    if ticket.contract_id is not None:
        hours = session.execute(
            sa.select(ServiceContract.response_time_hours, ServiceContract.resolution_time_hours)
            .where(ServiceContract.contract_id == ticket.contract_id)
        ).one_or_none()
    changes = session.execute(
        sa.select(TicketStatusChange.changed_at, TicketStatusChange.to_status)
        .where(TicketStatusChange.ticket_id == ticket.ticket_id)
        .order_by(TicketStatusChange.changed_at, TicketStatusChange.change_id)
    ).all()
    clock = compute_sla(
        created_at=ticket.created_at, status=TicketStatus(ticket.status), first_response_at=ticket.first_response_at,
        response_hours=hours[0] if hours else None, resolution_hours=hours[1] if hours else None,
        changes=[(at, TicketStatus(to)) for at, to in changes],
    )
    ticket.response_due_at = clock.response_due_at
    ticket.resolution_due_at = clock.resolution_due_at
    ticket.sla_due_at = clock.sla_due_at
    ticket.sla_at_risk_at = clock.sla_at_risk_at


def sla_state(ticket, now: datetime) -> str | None:
    """'ok', 'at_risk', 'breached', 'paused', 'met' or 'missed' (resolved tickets); None without an SLA."""
    if ticket.response_due_at is None:
        return None
    if ticket.status in DONE:
        on_time = ticket.resolved_at is not None and ticket.resolved_at <= ticket.resolution_due_at
        return "met" if on_time else "missed"
    if ticket.status == PAUSED:
        return "paused"
    if ticket.sla_due_at is None:
        return None
    if now >= ticket.sla_due_at:
        return "breached"
    if ticket.sla_at_risk_at is not None and now >= ticket.sla_at_risk_at:
        return "at_risk"
    return "ok"


def sla_state_condition(state: str, now: datetime):
    """The SQL condition for a queue filter by SLA state (the same rules as sla_state, for open tickets)."""
    t = SupportTicket
    if state == "breached":
        return t.sla_due_at <= now  # NULL never compares true
    if state == "at_risk":
        return sa.and_(t.sla_at_risk_at <= now, t.sla_due_at > now)
    if state == "ok":
        return t.sla_at_risk_at > now
    if state == "paused":
        return sa.and_(t.status == PAUSED, t.response_due_at.is_not(None))
    if state == "none":
        return t.response_due_at.is_(None)
    raise ValueError(state)
