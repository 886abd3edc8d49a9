"""Lists for automation: every kind of row the API lists, filtered, in (updated_at, id) order with a
cursor, and `updated_since` so a sync can poll for what changed.

One index per table serves it (`idx_<table>_updated (updated_at, id)`, migration 0013). Rows are
ordered by when they last changed, so a poller keeps the last row's `updated_at` and asks again
with `updated_since` a little before it (rows of transactions that commit late carry an earlier
time; an overlap of a minute catches them, and ids tell the repeats).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from portal.models import (
    Contact,
    Customer,
    Invoice,
    Project,
    ServiceContract,
    SupportTicket,
    TicketComment,
    TimeEntry,
)
from portal.services import policy
from portal.services.errors import Forbidden, Invalid, NotFound

MAX_LIMIT = 200


@dataclass(frozen=True)
class Resource:
    model: type
    key: Any  # the id column
    may_read: Callable[[policy.Principal], bool]
    filters: tuple[str, ...]  # columns a list may be filtered on (equality)
    refused: str
    # What a list's rows carry with them (the API's JSON of an invoice has its lines): one more
    # statement for the whole page, never one per row (tests/web/test_statement_counts.py).
    load: tuple = ()


RESOURCES: dict[str, Resource] = {
    "customers": Resource(Customer, Customer.customer_id, policy.may_read_customers,
                          ("account_status", "service_tier"), "Reading customers needs the customers:read scope."),
    "contacts": Resource(Contact, Contact.contact_id, policy.may_read_customers,
                         ("customer_id", "email"), "Reading contacts needs the customers:read scope."),
    "contracts": Resource(ServiceContract, ServiceContract.contract_id, policy.may_read_contracts,
                          ("customer_id", "contract_status"), "Reading contracts needs the contracts:read scope."),
    "tickets": Resource(SupportTicket, SupportTicket.ticket_id, policy.may_view_queue,
                        ("customer_id", "status", "priority", "assigned_employee_id", "contact_id"),
                        "Reading tickets needs the tickets:read scope."),
    "time_entries": Resource(TimeEntry, TimeEntry.entry_id, policy.may_read_time,
                             ("employee_id", "customer_id", "ticket_id", "project_id", "approval_status"),
                             "Reading time entries needs the time:read scope."),
    "invoices": Resource(Invoice, Invoice.invoice_id, policy.may_see_invoices,
                         ("customer_id", "invoice_status"), "Reading invoices needs the invoices:read scope.",
                         load=(selectinload(Invoice.line_items),)),
    "projects": Resource(Project, Project.project_id, policy.may_see_projects,
                         ("customer_id", "project_status", "project_manager_id"),
                         "Reading projects needs the projects:read scope."),
}


@dataclass(frozen=True)
class Page:
    rows: list
    next_cursor: str | None


def encode_cursor(updated_at: datetime, row_id: int) -> str:
    return base64.urlsafe_b64encode(json.dumps([updated_at.isoformat(), row_id]).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    """:raises Invalid: not a cursor this API gave."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        stamp, row_id = json.loads(raw)
        moment = datetime.fromisoformat(stamp)
        if moment.tzinfo is None or not isinstance(row_id, int) or not 0 < row_id < 2**63:
            raise ValueError
        return moment, row_id
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError, json.JSONDecodeError):
        raise Invalid("This cursor is not one the API gave; start again without it.", "cursor") from None


def _require(principal: policy.Principal, resource: Resource) -> None:
    if not resource.may_read(principal):
        raise Forbidden(resource.refused)


def list_rows(session, principal: policy.Principal, name: str, *, filters: dict[str, Any] | None = None,
              updated_since: datetime | None = None, cursor: str | None = None, limit: int = 50,
              load: tuple | None = None) -> Page:
    """One page of `name` rows in (updated_at, id) order, and the cursor of the next page (None at the end).

    `load` replaces the resource's eager loads (`()`: the rows alone, as an invoice list without lines).

    :raises Forbidden: the principal may not read these rows. :raises Invalid: a bad cursor or filter.
    """
    resource = RESOURCES[name]
    _require(principal, resource)
    model = resource.model
    query = sa.select(model).options(*(resource.load if load is None else load))
    for column, value in (filters or {}).items():
        if column not in resource.filters:
            raise Invalid(f"Lists of {name.replace('_', ' ')} filter on {', '.join(resource.filters)}.", column)
        if value is not None:
            query = query.where(getattr(model, column) == value)
    if updated_since is not None:
        query = query.where(model.updated_at >= updated_since)
    if cursor:
        after, after_id = decode_cursor(cursor)
        query = query.where(sa.tuple_(model.updated_at, resource.key) > sa.tuple_(sa.literal(after), after_id))
    limit = max(1, min(limit, MAX_LIMIT))
    rows = list(session.scalars(query.order_by(model.updated_at, resource.key).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    last = rows[-1] if rows else None
    next_cursor = encode_cursor(last.updated_at, getattr(last, resource.key.key)) if more and last else None
    return Page(rows, next_cursor)


def get_row(session, principal: policy.Principal, name: str, row_id: int):
    """One row. :raises Forbidden: may not read these rows. :raises NotFound: no such row."""
    resource = RESOURCES[name]
    _require(principal, resource)
    row = session.get(resource.model, row_id)
    if row is None:
        raise NotFound(f"No such {name.rstrip('s').replace('_', ' ')}.")
    return row


def ticket_comments(session, principal: policy.Principal, ticket_id: int) -> list[TicketComment]:
    """A ticket's conversation, oldest first: internal notes only for those who may read them."""
    query = sa.select(TicketComment).where(TicketComment.ticket_id == ticket_id)
    if not policy.may_see_internal_notes(principal):
        query = query.where(TicketComment.is_internal.is_(False))
    return list(session.scalars(query.order_by(TicketComment.created_at, TicketComment.comment_id)))


def sla_alerts(session, principal: policy.Principal, *, days: int, now: datetime, limit: int = 500
               ) -> list[SupportTicket]:
    """Unresolved tickets whose next SLA deadline falls within `days` days or has passed, most urgent first.

    :raises Forbidden: the principal may not read tickets.
    """
    from datetime import timedelta

    from portal.services.statuses import TICKETS_UNRESOLVED

    _require(principal, RESOURCES["tickets"])
    return list(session.scalars(
        sa.select(SupportTicket).where(SupportTicket.status.in_(TICKETS_UNRESOLVED),
                                       SupportTicket.sla_due_at.is_not(None),
                                       SupportTicket.sla_due_at <= now + timedelta(days=days))
        .order_by(SupportTicket.sla_due_at, SupportTicket.ticket_id).limit(limit)))
