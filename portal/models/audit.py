"""The audit log: who changed what, when, from where. Rows are never updated or deleted."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import INET, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from portal.models.base import ActorType, Base


class AuditEvent(Base):
    __tablename__ = "audit_events"
    # Read newest first by keyset on (occurred_at, event_id); one index per filter of the audit log
    # page, each ending in that order (migration 0014, docs/performance.md).
    __table_args__ = (
        sa.Index("idx_audit_occurred", "occurred_at", "event_id"),
        sa.Index("idx_audit_row", "table_name", "row_id", "occurred_at", "event_id"),
        sa.Index("idx_audit_table", "table_name", "occurred_at", "event_id"),
        sa.Index("idx_audit_actor", "actor_type", "actor_id", "occurred_at", "event_id"),
        sa.Index("idx_audit_action", "action", "occurred_at", "event_id"),
    )

    event_id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True)
    occurred_at: Mapped[datetime] = mapped_column(
        sa.DateTime(timezone=True), server_default=sa.func.now()
    )
    actor_type: Mapped[ActorType]
    actor_id: Mapped[int | None]
    actor_label: Mapped[str | None] = mapped_column(sa.String(255))
    action: Mapped[str] = mapped_column(sa.String(100))
    table_name: Mapped[str | None] = mapped_column(sa.String(63))
    row_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    changes: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    ip_address: Mapped[str | None] = mapped_column(INET)
