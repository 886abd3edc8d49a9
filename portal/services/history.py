"""A ticket's history as people read it, from its audit events.

The audit log keeps column names and enum values ("assigned_employee_id", "waiting_customer");
staff read "Assigned to John Davis" and "In progress → Waiting for the customer". Employee names
are resolved in one query, so a history costs two queries however long it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from portal.models import AuditEvent, Employee
from portal.services.numbers import plain_number

HISTORY_LENGTH = 30

STATUS_LABELS = {
    "open": "Open",
    "assigned": "Assigned",
    "in_progress": "In progress",
    "waiting_customer": "Waiting for the customer",
    "resolved": "Resolved",
    "closed": "Closed",
}


@dataclass(frozen=True)
class HistoryEntry:
    at: datetime
    who: str    # the person (or "TechServ Portal" for scheduled work) as the audit log names them
    what: str   # "Assigned to John Davis", "Priority: Medium → High"


def _label(value) -> str:
    if value is None:
        return "none"
    return str(value).replace("_", " ").capitalize()


def _status(value) -> str:
    return STATUS_LABELS.get(value, _label(value))


def _hours(value) -> str:
    return "none" if value is None else f"{plain_number(value)} h"


def _assignment(change: dict, names: dict[int, str]) -> str:
    old, new = change.get("old"), change.get("new")
    name = lambda employee_id: names.get(employee_id, "a former employee")  # noqa: E731
    if new is None:
        return f"Unassigned (was {name(old)})" if old is not None else "Unassigned"
    if old is None:
        return f"Assigned to {name(new)}"
    return f"Reassigned from {name(old)} to {name(new)}"


def _what(event: AuditEvent, names: dict[int, str]) -> str:
    changes = event.changes or {}
    action = event.action
    if action in ("ticket.created", "ticket.opened"):  # "opened": its name before the events had webhooks
        priority = (changes.get("priority") or {}).get("new")
        return f"Opened with priority {_label(priority)}" if priority else "Opened"
    if action == "ticket.status_changed" and "status" in changes:
        return f"{_status(changes['status'].get('old'))} → {_status(changes['status'].get('new'))}"
    if action == "ticket.assigned" and "assigned_employee_id" in changes:
        return _assignment(changes["assigned_employee_id"], names)
    if action == "ticket.updated":
        parts = []
        if "priority" in changes:
            parts.append(f"Priority: {_label(changes['priority'].get('old'))} → {_label(changes['priority'].get('new'))}")
        if "estimated_hours" in changes:
            change = changes["estimated_hours"]
            parts.append(f"Estimate: {_hours(change.get('old'))} → {_hours(change.get('new'))}")
        return "; ".join(parts) or "Details changed"
    if action == "ticket.replied":
        return "Replied to the customer" if event.actor_type == "employee" else "Replied"
    if action == "ticket.note_added":
        return "Added an internal note"
    if action == "ticket.rated":
        rating = (changes.get("customer_satisfaction") or {}).get("new")
        return f"Rated the work {rating} out of 5" if rating else "Rated the work"
    return _label(action.split(".")[-1])


def _who(event: AuditEvent) -> str:
    if event.actor_type == "system":
        return "TechServ Portal" if not event.actor_label or event.actor_label == "system" \
            else f"TechServ Portal ({event.actor_label})"
    return event.actor_label or _label(event.actor_type)


def ticket_history(session, ticket_id: int, *, limit: int = HISTORY_LENGTH) -> list[HistoryEntry]:
    """The ticket's latest changes, newest first, in words (two queries). Raises nothing: no events, no entries."""
    events = session.scalars(
        sa.select(AuditEvent).where(AuditEvent.table_name == "support_tickets", AuditEvent.row_id == ticket_id)
        .order_by(AuditEvent.occurred_at.desc(), AuditEvent.event_id.desc()).limit(limit)).all()
    employee_ids = {value for event in events if event.changes
                    for value in (event.changes.get("assigned_employee_id") or {}).values()
                    if isinstance(value, int)}
    names = {}
    if employee_ids:
        names = dict(session.execute(
            sa.select(Employee.employee_id, Employee.first_name + " " + Employee.last_name)
            .where(Employee.employee_id.in_(employee_ids))).all())
    return [HistoryEntry(at=event.occurred_at, who=_who(event), what=_what(event, names)) for event in events]
