"""Who is acting: an employee, a contact, an API client, or the system itself (scheduled jobs, seed)."""

from __future__ import annotations

from dataclasses import dataclass

from portal.models.base import ActorType


@dataclass(frozen=True)
class Actor:
    type: ActorType
    id: int | None
    label: str
    ip_address: str | None = None

    @classmethod
    def system(cls, label: str = "system") -> "Actor":
        return cls(ActorType.SYSTEM, None, label)
