"""The SLA clock, in one function (DESIGN.md "Tickets"), counting the hours the contract covers.

Response due = the moment the contract's response hours of covered time have run from creation.
Resolution due = the same with the resolution hours plus the covered time of every period the
ticket spent waiting on the customer (the clock stops then). Covered time is the contract's
coverage (migration 0020): around the clock (24x7), or some weekdays from a start to an end time
in the customer's time zone, never on the MSP's holidays. The due times are stored on the ticket
and recomputed from its status log at every move, so no paused time is lost. A ticket without a
contract has no SLA.

Contacts' transactions store these times too (a reply reopens a ticket): the database checks what
they write against its SQL twin of `compute_sla` (the trigger support_ticket_contact_guard, with
sla_covered_end and sla_covered_seconds of migration 0020). Change both together.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from portal.models import (
    ContractStatus, Customer, Holiday, ServiceContract, SupportTicket, TicketStatus, TicketStatusChange,
)

AT_RISK_SHARE = 0.25  # "at risk" once under 25 % of the deadline's time is left
PAUSED = TicketStatus.WAITING_CUSTOMER
DONE = (TicketStatus.RESOLVED, TicketStatus.CLOSED)


@dataclass(frozen=True)
class SlaClock:
    response_due_at: datetime | None = None
    resolution_due_at: datetime | None = None
    sla_due_at: datetime | None = None
    sla_at_risk_at: datetime | None = None


MAX_DAYS = 3700  # how far ahead a deadline is looked for (the SQL twin stops there too)


@dataclass(frozen=True)
class Coverage:
    """The hours a contract covers: 24x7 (no days), or ISO weekdays from `start` to `end` in `zone`."""

    days: frozenset[int] | None = None
    start: time | None = None
    end: time | None = None
    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    holidays: frozenset[date] = frozenset()

    @property
    def always(self) -> bool:
        return not self.days

    def describe(self) -> str:
        """'24x7' or 'Mon-Fri 08:00-18:00 America/Denver' (for pages)."""
        if self.always:
            return "24x7"
        names = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
        days = sorted(self.days)
        if days == list(range(days[0], days[-1] + 1)) and len(days) > 2:
            span = f"{names[days[0] - 1]}-{names[days[-1] - 1]}"
        else:
            span = ", ".join(names[d - 1] for d in days)
        return f"{span} {self.start:%H:%M}-{self.end:%H:%M} {self.zone.key}"


TWENTY_FOUR_SEVEN = Coverage()


def _windows(coverage: Coverage, since: datetime) -> Iterator[tuple[datetime, datetime]]:
    """The covered stretches (UTC) day by day in the customer's zone, from the local day of `since`."""
    day = since.astimezone(coverage.zone).date()
    for _ in range(MAX_DAYS):
        if day.isoweekday() in coverage.days and day not in coverage.holidays:
            # In UTC before any arithmetic: aware datetimes of one zone subtract as wall-clock times.
            yield (datetime.combine(day, coverage.start, coverage.zone).astimezone(UTC),
                   datetime.combine(day, coverage.end, coverage.zone).astimezone(UTC))
        day += timedelta(days=1)


def add_covered(start: datetime, duration: timedelta, coverage: Coverage) -> datetime:
    """The moment `duration` of covered time has run from `start`.

    :raises ValueError: no such moment within MAX_DAYS (a coverage with no day left).
    """
    start = start.astimezone(UTC)  # aware datetimes of one zone add as wall-clock times
    if coverage.always:
        return start + duration
    left = duration
    for window_start, window_end in _windows(coverage, start):
        window_start = max(window_start, start)
        if window_end <= window_start:
            continue
        if left <= window_end - window_start:
            return window_start + left
        left -= window_end - window_start
    raise ValueError("no covered time within ten years")


def covered_between(start: datetime, end: datetime, coverage: Coverage) -> timedelta:
    """The covered time from `start` to `end` (zero if end is not after start)."""
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    if end <= start:
        return timedelta()
    if coverage.always:
        return end - start
    total = timedelta()
    for window_start, window_end in _windows(coverage, start):
        if window_start >= end:
            break
        overlap = min(window_end, end) - max(window_start, start)
        if overlap > timedelta():
            total += overlap
    return total


def paused_time(changes: Iterable[tuple[datetime, TicketStatus]], coverage: Coverage = TWENTY_FOUR_SEVEN) -> timedelta:
    """Covered time spent in waiting_customer in the closed pauses of `changes` ((at, to_status), in order).

    A pause still running counts from when it ends: while a ticket waits, its clock is stopped.
    """
    total = timedelta()
    waiting_since: datetime | None = None
    for at, status in changes:
        if status == PAUSED and waiting_since is None:
            waiting_since = at
        elif status != PAUSED and waiting_since is not None:
            total += covered_between(waiting_since, at, coverage)
            waiting_since = None
    return total


def compute_sla(*, created_at: datetime, status: TicketStatus, first_response_at: datetime | None,
                response_hours: int | None, resolution_hours: int | None,
                changes: Iterable[tuple[datetime, TicketStatus]],
                coverage: Coverage = TWENTY_FOUR_SEVEN) -> SlaClock:
    """The stored SLA times of a ticket, from its contract's hours and coverage and its status log.

    "At risk" is the moment only 25 % of the window's covered time is left.
    """
    if response_hours is None or resolution_hours is None:
        return SlaClock()
    paused = paused_time(changes, coverage)
    response_due = add_covered(created_at, timedelta(hours=response_hours), coverage)
    resolution_due = add_covered(created_at, timedelta(hours=resolution_hours) + paused, coverage)
    if status == PAUSED or status in DONE:
        return SlaClock(response_due, resolution_due)
    if first_response_at is None and response_due <= resolution_due:
        due, window, extra = response_due, response_hours, timedelta()
    else:
        due, window, extra = resolution_due, resolution_hours, paused
    at_risk = add_covered(created_at, timedelta(hours=window * (1 - AT_RISK_SHARE)) + extra, coverage)
    return SlaClock(response_due, resolution_due, due, at_risk)


def coverage_label(contract: ServiceContract | None, time_zone: str | None) -> str | None:
    """'24x7' or 'Mon-Fri 08:00-18:00 America/Denver' for a contract (None without one); no query."""
    if contract is None:
        return None
    if not contract.coverage_days:
        return TWENTY_FOUR_SEVEN.describe()
    return Coverage(frozenset(contract.coverage_days), contract.coverage_start, contract.coverage_end,
                    ZoneInfo(time_zone or "UTC")).describe() + ", holidays excepted"


def _coverage(session, row, since: date | None) -> Coverage:
    if row is None or not row.coverage_days:
        return TWENTY_FOUR_SEVEN
    query = sa.select(Holiday.day)
    if since is not None:
        query = query.where(Holiday.day >= since - timedelta(days=1))  # the customer's day may be UTC's eve
    return Coverage(frozenset(row.coverage_days), row.coverage_start, row.coverage_end, ZoneInfo(row.timezone),
                    frozenset(session.scalars(query)))


def _terms_query():
    """A contract's SLA terms and its customer's time zone: what refresh_sla and the coverage read."""
    return (sa.select(ServiceContract.contract_id, ServiceContract.response_time_hours,
                      ServiceContract.resolution_time_hours, ServiceContract.coverage_days,
                      ServiceContract.coverage_start, ServiceContract.coverage_end, Customer.timezone)
            .join(Customer, Customer.customer_id == ServiceContract.customer_id))


def _contract_terms(session, contract_id: int | None):
    if contract_id is None:
        return None
    return session.execute(_terms_query().where(ServiceContract.contract_id == contract_id)).one_or_none()


def coverage_of(session, contract_id: int | None, *, since: date | None = None) -> Coverage:
    """The contract's coverage with the customer's zone and the holidays from `since` on (24x7 without one)."""
    return _coverage(session, _contract_terms(session, contract_id), since)


def active_terms(session, customer_id: int, day: date):
    """The customer's active contract in force on `day` (the latest started), with its SLA terms and the
    customer's time zone, in one statement: a row with contract_id and what refresh_sla reads, or None."""
    return session.execute(
        _terms_query()
        .where(ServiceContract.customer_id == customer_id, ServiceContract.contract_status == ContractStatus.ACTIVE,
               ServiceContract.start_date <= day, ServiceContract.end_date >= day)
        .order_by(ServiceContract.start_date.desc()).limit(1)
    ).first()


_READ = object()


def refresh_sla(session, ticket: SupportTicket, changes: list[tuple[datetime, str]] | None = None, *,
                terms=_READ) -> None:
    """Recompute the ticket's stored SLA times from its contract and status log (call after every move).

    `changes` is the status log and `terms` the contract's terms (active_terms' row, or None without a
    contract) when the caller knows them already (a ticket being opened has one log entry, not yet
    written, and has just looked its contract up); otherwise they are read."""
    if terms is _READ:
        terms = _contract_terms(session, ticket.contract_id)
    if changes is None:
        changes = session.execute(
            sa.select(TicketStatusChange.changed_at, TicketStatusChange.to_status)
            .where(TicketStatusChange.ticket_id == ticket.ticket_id)
            .order_by(TicketStatusChange.changed_at, TicketStatusChange.change_id)
        ).all()
    clock = compute_sla(
        created_at=ticket.created_at, status=TicketStatus(ticket.status), first_response_at=ticket.first_response_at,
        response_hours=terms.response_time_hours if terms else None,
        resolution_hours=terms.resolution_time_hours if terms else None,
        changes=[(at, TicketStatus(to)) for at, to in changes],
        coverage=_coverage(session, terms, ticket.created_at.date()),
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
