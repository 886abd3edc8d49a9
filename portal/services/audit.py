"""The audit log: every state change records who, what, when and from where."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

import sqlalchemy as sa

from portal.models.audit import AuditEvent
from portal.services.actors import Actor


def _jsonable(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


BACKDATE = "audit.backdate"


@contextmanager
def backdated(session, at: datetime):
    """Date every event recorded on `session` inside the block at `at` (the demo loader's invoices, made
    through the invoicing service for months long past, are logged on the day they were made)."""
    before = session.info.get(BACKDATE)
    session.info[BACKDATE] = at
    try:
        yield
    finally:
        if before is None:
            session.info.pop(BACKDATE, None)
        else:
            session.info[BACKDATE] = before


def record(
    session,
    actor: Actor,
    action: str,
    *,
    table: str | None = None,
    row_id: int | None = None,
    changes: dict[str, tuple[Any, Any]] | None = None,
    at: datetime | None = None,
) -> int:
    """Write an audit event now, in the caller's transaction; returns its id. `changes` maps a field to (old, new).

    `at` dates the event (default: the transaction's time); only the demo loader gives one, for a
    history that happened before the data was loaded (see `backdated`).

    The id is drawn from the sequence first and the INSERT has no RETURNING: contacts may add
    events under row-level security but never read any back. Services call `events.emit`, which
    writes this row and the jobs that follow from it.
    """
    event_id = session.scalar(sa.select(sa.func.nextval("audit_events_event_id_seq")))
    at = at or session.info.get(BACKDATE)
    session.execute(sa.insert(AuditEvent.__table__).inline().values(
        event_id=event_id,
        **({"occurred_at": at} if at else {}),
        actor_type=actor.type,
        actor_id=actor.id,
        actor_label=actor.label,
        action=action,
        table_name=table,
        row_id=row_id,
        changes=(
            {field: {"old": _jsonable(old), "new": _jsonable(new)} for field, (old, new) in changes.items()}
            if changes
            else None
        ),
        ip_address=actor.ip_address,
    ))
    return event_id


def record_many(session, actor: Actor, action: str, *, table: str, row_ids: list[int],
                changes: dict[str, tuple[Any, Any]] | None = None) -> list[int]:
    """One audit event per row, written in a single statement (bulk approvals); returns their ids in order."""
    if not row_ids:
        return []
    payload = ({field: {"old": _jsonable(old), "new": _jsonable(new)} for field, (old, new) in changes.items()}
               if changes else None)
    event_ids = list(session.scalars(sa.select(sa.func.nextval("audit_events_event_id_seq"))
                                     .select_from(sa.func.generate_series(1, len(row_ids)))))
    session.execute(sa.insert(AuditEvent.__table__).inline(), [
        {"event_id": event_id, "actor_type": actor.type, "actor_id": actor.id, "actor_label": actor.label,
         "action": action, "table_name": table, "row_id": row_id, "changes": payload,
         "ip_address": actor.ip_address}
        for event_id, row_id in zip(event_ids, row_ids)
    ])
    return event_ids
