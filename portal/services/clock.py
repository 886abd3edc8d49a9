"""The one clock of the whole app: `now()` in UTC, and `today()` in the business time zone.

Business dates (a time entry's work date, an invoice's due date, "this week") are calendar days
where the MSP works, not UTC days: at 18:00 in Denver it is already tomorrow in UTC. The zone is
DISPLAY_TIMEZONE, set once by create_app (`set_business_zone`). Tests pass their own `now` to the
services instead of patching this module.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

_business_zone = ZoneInfo("America/Denver")


def set_business_zone(name: str) -> None:
    """Called by create_app with DISPLAY_TIMEZONE (already checked by portal.config)."""
    global _business_zone
    _business_zone = ZoneInfo(name)


def business_zone() -> ZoneInfo:
    return _business_zone


def now() -> datetime:
    """This instant, timezone-aware, in UTC (how the database stores every timestamp)."""
    return datetime.now(UTC)


def today(at: datetime | None = None) -> date:
    """The calendar day in the business time zone at `at` (default: now)."""
    return (at or now()).astimezone(_business_zone).date()
