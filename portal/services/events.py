"""One path for the consequences of every change: `emit` writes the audit row and, in the same
transaction, the jobs that follow from it (emails now; webhook deliveries with the REST API).

Services change rows, then call `emit(session, principal, "ticket.replied", ticket, {...})`. The
audit row says who (the principal's actor, with the request's address), what, on which row and
what changed; the jobs are rows of the job queue (portal.jobs.queue), so a rollback writes
neither and a commit both. Nothing is sent from the request: the worker sends it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from portal.services import audit
from portal.services.actors import Actor
from portal.services.policy import Principal


@dataclass(frozen=True)
class Event:
    id: int
    name: str
    table: str | None
    row_id: int | None
    actor: Actor
    data: dict[str, Any] = field(default_factory=dict)


def _subject(subject) -> tuple[str | None, int | None]:
    """(table, row id) of an ORM object, a (table, id) pair, or None."""
    if subject is None:
        return None, None
    if isinstance(subject, tuple):
        return subject
    identity = sa.inspect(subject).identity
    return type(subject).__tablename__, identity[0] if identity else None


def apply_changes(row, values: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Set each of `values` on `row` that differs; return {name: (old, new)} of those, as emit records them."""
    changes = {name: (getattr(row, name), value) for name, value in values.items() if getattr(row, name) != value}
    for name, (_, value) in changes.items():
        setattr(row, name, value)
    return changes


def emit(session, who: Principal | Actor, name: str, subject=None, data: dict[str, Any] | None = None, *,
         changes: dict[str, tuple[Any, Any]] | None = None) -> Event:
    """Record that `who` did `name` to `subject`, and enqueue what follows from it; returns the event.

    `changes` maps a field to (old, new) for the audit log; `data` is what the follow-up jobs need
    (ids, never secrets). Call it after the change is flushed, in the change's transaction.
    """
    actor = who.actor if isinstance(who, Principal) else who
    table, row_id = _subject(subject)
    event_id = audit.record(session, actor, name, table=table, row_id=row_id, changes=changes)
    event = Event(event_id, name, table, row_id, actor, dict(data or {}))
    from portal.jobs.queue import defer

    defer(session, follow_ups(event, session))
    return event


def emit_many(session, who: Principal | Actor, name: str, table: str, row_ids: list[int], *,
              changes: dict[str, tuple[Any, Any]] | None = None,
              data: dict[int, dict[str, Any]] | None = None) -> list[Event]:
    """One audit row per row changed in bulk (approvals of a thousand entries), in one statement.

    With `data` (row id -> the event's data), each row's event also starts its follow-ups (webhook
    deliveries), written in a few statements whatever the number of rows; without it, none.
    """
    actor = who.actor if isinstance(who, Principal) else who
    event_ids = audit.record_many(session, actor, name, table=table, row_ids=row_ids, changes=changes)
    if data is None:
        return []
    happened = [Event(event_id, name, table, row_id, actor, dict(data.get(row_id, {})))
                for event_id, row_id in zip(event_ids, row_ids)]
    from portal.jobs.queue import defer

    defer(session, [job for event in happened for job in follow_ups(event, session)])
    return happened


def follow_ups(event: Event, session=None) -> list:
    """The jobs an event starts: the emails it causes and its webhook deliveries (one per subscription
    that wants it; `session` is the change's, which tells which subscriptions those are)."""
    from portal.services import notifications, webhooks

    return notifications.jobs_for(event) + webhooks.jobs_for(session, event)
