"""The staff queue: open tickets, filtered, searched, sorted and paged, with counts.

A fixed number of queries whatever the data (rows, total, counts by status, counts by SLA state),
each served by the partial indexes on open tickets (see docs/performance.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import aliased, load_only

from portal.models import Customer, Employee, SupportTicket, TicketCategory, TicketPriority, TicketStatus
from portal.services import policy
from portal.services.errors import NotFound
from portal.services.numbering import typed_ticket_number
from portal.services.sla import sla_state, sla_state_condition
from portal.services.statuses import TICKETS_NOT_CLOSED

PER_PAGE = 25
OPEN_STATUSES = TICKETS_NOT_CLOSED  # the queue lists every ticket not closed
SLA_STATES = ("breached", "at_risk", "ok", "paused", "none")
SORTS = {
    "sla": "Most urgent SLA first",
    "priority": "Highest priority first",
    "age": "Oldest first",
    "activity": "Latest activity first",
}
ASSIGNEES = ("anyone", "me", "unassigned")


@dataclass(frozen=True)
class QueueFilters:
    status: str = ""
    priority: str = ""
    category: str = ""
    customer_id: int | None = None
    assignee: str = "anyone"
    sla: str = ""
    q: str = ""
    sort: str = "sla"
    page: int = 1

    @classmethod
    def from_args(cls, args) -> "QueueFilters":
        """From the query string; anything unknown falls back to the default (never an error)."""
        def pick(name, allowed, default=""):
            value = (args.get(name) or "").strip()
            return value if value in allowed else default

        def positive_int(name, default=None, largest=2_147_483_647):
            try:
                value = int(args.get(name, ""))
            except ValueError:
                return default
            return value if 0 < value <= largest else default

        return cls(
            status=pick("status", [s.value for s in OPEN_STATUSES]),
            priority=pick("priority", [p.value for p in TicketPriority]),
            category=pick("category", [c.value for c in TicketCategory]),
            customer_id=positive_int("customer_id"),
            assignee=pick("assignee", ASSIGNEES, "anyone"),
            sla=pick("sla", SLA_STATES),
            q=(args.get("q") or "").strip()[:200],
            sort=pick("sort", SORTS, "sla"),
            page=min(positive_int("page", 1, largest=10**18), 10_000),
        )

    def as_args(self, **override) -> dict:
        """The non-default filters as query-string arguments (for links that keep them)."""
        merged = replace(self, **override)
        defaults = QueueFilters()
        return {name: getattr(merged, name) for name in self.__dataclass_fields__
                if getattr(merged, name) != getattr(defaults, name)}


@dataclass
class QueueRow:
    ticket: SupportTicket
    company_name: str
    assignee_name: str | None
    sla: str | None


@dataclass
class QueuePage:
    rows: list[QueueRow]
    total: int
    page: int
    pages: int
    status_counts: dict[str, int] = field(default_factory=dict)
    sla_counts: dict[str, int] = field(default_factory=dict)


def _conditions(principal: policy.Principal, filters: QueueFilters, now: datetime, *, skip: str = ""):
    t = SupportTicket
    if filters.status and "status" not in skip:
        conditions = [t.status == filters.status]  # one open status (the filter offers no other)
    else:
        conditions = [t.status != TicketStatus.CLOSED]
    if filters.priority:
        conditions.append(t.priority == filters.priority)
    if filters.category:
        conditions.append(t.category == filters.category)
    if filters.customer_id:
        conditions.append(t.customer_id == filters.customer_id)
    if filters.assignee == "me":
        conditions.append(t.assigned_employee_id == principal.employee_id)
    elif filters.assignee == "unassigned":
        conditions.append(t.assigned_employee_id.is_(None))
    if filters.sla and "sla" not in skip:
        conditions.append(sla_state_condition(filters.sla, now))
    if filters.q:
        number = typed_ticket_number(filters.q)
        if number:
            conditions.append(t.ticket_number == number)
        else:
            conditions.append(t.search_vector.op("@@")(sa.func.websearch_to_tsquery("english", filters.q)))
    return conditions


def _order(sort: str):
    t = SupportTicket
    if sort == "priority":
        # The enum's order is low < medium < high < critical, so this is "critical first" and uses
        # idx_tickets_open_priority.
        return [t.priority.desc(), t.sla_due_at.asc().nulls_last(), t.ticket_id]
    if sort == "age":
        return [t.created_at.asc(), t.ticket_id]
    if sort == "activity":
        return [t.last_activity_at.desc(), t.ticket_id.desc()]
    return [t.sla_due_at.asc().nulls_last(), t.ticket_id]


# The columns a queue row shows (templates/staff/tickets/_queue_row.html, _sla_chip.html, sla_state):
# a column missing here costs a statement per row, which tests/web/test_statement_counts.py catches.
SHOWN = [SupportTicket.ticket_id, SupportTicket.ticket_number, SupportTicket.title, SupportTicket.created_at,
         SupportTicket.priority, SupportTicket.status, SupportTicket.customer_id, SupportTicket.assigned_employee_id,
         SupportTicket.version, SupportTicket.last_activity_at, SupportTicket.first_response_at,
         SupportTicket.resolved_at, SupportTicket.closed_at, SupportTicket.response_due_at,
         SupportTicket.resolution_due_at, SupportTicket.sla_due_at, SupportTicket.sla_at_risk_at,
         SupportTicket.contract_id, SupportTicket.category]


def staff_queue(session, principal: policy.Principal, filters: QueueFilters, *, now: datetime,
                per_page: int = PER_PAGE) -> QueuePage:
    """One page of the queue and its counts, in two queries: every count in one pass over the open
    tickets the other filters leave (FILTER aggregates), then the page's rows."""
    t = SupportTicket
    assignee = aliased(Employee)
    where = _conditions(principal, filters, now, skip="status+sla")
    status_match = t.status == filters.status if filters.status else sa.true()
    sla_match = sla_state_condition(filters.sla, now) if filters.sla else sa.true()
    words = bool(filters.q) and not typed_ticket_number(filters.q)
    if words:
        # A word search is read from its GIN index (idx_tickets_open_search): the planner prefers walking
        # every open ticket by another index and testing each one's search vector, which it costs as
        # cheap, but those vectors are read from TOAST (printer on 1,000,000 tickets: 39 ms that way,
        # 7 ms from the GIN index). Only for the queue's two statements; set back after them.
        session.execute(sa.text("SET LOCAL enable_indexscan = off"))
    counts = session.execute(sa.select(
        sa.func.count().filter(sa.and_(status_match, sla_match)),
        *[sa.func.count().filter(sa.and_(t.status == status, sla_match)) for status in OPEN_STATUSES],
        *[sa.func.count().filter(sa.and_(status_match, sla_state_condition(state, now))) for state in SLA_STATES],
    ).where(*where)).one()
    total = counts[0]
    status_counts = dict(zip(OPEN_STATUSES, counts[1:1 + len(OPEN_STATUSES)]))
    sla_row = counts[1 + len(OPEN_STATUSES):]
    pages = max(1, -(-total // per_page))
    page = min(filters.page, pages)
    # The page's ids first, from the index alone where it can (a deep page's OFFSET walks index
    # entries, not rows), then only those 25 rows, with only the columns the queue shows.
    chosen = (sa.select(t.ticket_id).where(*_conditions(principal, filters, now)).order_by(*_order(filters.sort))
              .limit(per_page).offset((page - 1) * per_page).subquery())
    rows = session.execute(
        sa.select(t, Customer.company_name, (assignee.first_name + " " + assignee.last_name))
        .options(load_only(*SHOWN))
        .join(chosen, chosen.c.ticket_id == t.ticket_id)
        .join(Customer, Customer.customer_id == t.customer_id)
        .outerjoin(assignee, assignee.employee_id == t.assigned_employee_id)
        .order_by(*_order(filters.sort))
    ).all()
    if words:
        session.execute(sa.text("SET LOCAL enable_indexscan TO DEFAULT"))
    return QueuePage(
        rows=[QueueRow(ticket, company, name, sla_state(ticket, now)) for ticket, company, name in rows],
        total=total, page=page, pages=pages,
        status_counts={s.value: status_counts.get(s, 0) for s in OPEN_STATUSES},
        sla_counts=dict(zip(SLA_STATES, sla_row)),
    )


def queue_row(session, ticket_id: int, *, now: datetime) -> QueueRow:
    """One row of the queue (after a change to its ticket), in one query. :raises NotFound: no such ticket."""
    t = SupportTicket
    assignee = aliased(Employee)
    row = session.execute(
        sa.select(t, Customer.company_name, (assignee.first_name + " " + assignee.last_name))
        .join(Customer, Customer.customer_id == t.customer_id)
        .outerjoin(assignee, assignee.employee_id == t.assigned_employee_id)
        .where(t.ticket_id == ticket_id)).one_or_none()
    if row is None:
        raise NotFound("No such ticket.")
    ticket, company, name = row
    return QueueRow(ticket, company, name, sla_state(ticket, now))
