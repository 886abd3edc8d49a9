"""The MSP's holiday calendar: days no business-hours contract covers (services/sla.py).

Admins keep it a year at a time; the `holidays` package pre-fills a country's public holidays.
A change moves the deadlines of the open tickets it touches: their stored SLA times are
recomputed in the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import sqlalchemy as sa

from portal.models import Holiday, ServiceContract, SupportTicket
from portal.services import events, policy
from portal.services.errors import Conflict, Forbidden, Invalid, NotFound
from portal.services.sla import refresh_sla
from portal.services.statuses import TICKETS_NOT_CLOSED

FIRST_YEAR, LAST_YEAR = 2000, 2100
MAX_NAME = 100


@dataclass(frozen=True)
class YearPage:
    year: int
    holidays: list[Holiday]
    countries: list[tuple[str, str]]  # (code, name) the pre-fill offers


_COUNTRIES: list[tuple[str, str]] = []


def countries() -> list[tuple[str, str]]:
    """(ISO 3166 alpha-2 code, name) of the countries the `holidays` package knows, by name (read once)."""
    import holidays as package

    if not _COUNTRIES:
        found = []
        for code in package.list_supported_countries():
            if len(code) != 2:
                continue  # the alpha-3 aliases of the same countries
            # Each country's class (US) derives from one named after the country (UnitedStates).
            name = next((k.__name__ for k in type(package.country_holidays(code)).__mro__ if len(k.__name__) > 3),
                        code)
            found.append((code, _spaced(name)))
        _COUNTRIES.extend(sorted(found, key=lambda pair: pair[1]))
    return _COUNTRIES


def _spaced(class_name: str) -> str:
    import re

    return re.sub(r"(?<=[a-z])(?=[A-Z])", " ", class_name)


def _check(principal: policy.Principal) -> None:
    if not policy.may_keep_holidays(principal):
        raise Forbidden("Only admins keep the holiday calendar.")


def _year(value: int | None) -> int:
    if value is None or not FIRST_YEAR <= value <= LAST_YEAR:
        raise Invalid(f"Choose a year from {FIRST_YEAR} to {LAST_YEAR}.", "year")
    return value


def year_page(session, principal: policy.Principal, year: int) -> YearPage:
    """The year's holidays, by date. :raises Forbidden: not an admin. :raises Invalid: a year out of range."""
    _check(principal)
    year = _year(year)
    rows = session.scalars(sa.select(Holiday).where(Holiday.day.between(date(year, 1, 1), date(year, 12, 31)))
                           .order_by(Holiday.day)).all()
    return YearPage(year, list(rows), countries())


def _refresh_touched(session, days: list[date]) -> int:
    """Recompute the SLA of the open business-hours tickets whose deadlines may cross one of `days`."""
    if not days:
        return 0
    start = datetime.combine(min(days) - timedelta(days=1), time(), UTC)
    end = datetime.combine(max(days) + timedelta(days=2), time(), UTC)
    touched = session.scalars(
        sa.select(SupportTicket).join(ServiceContract, ServiceContract.contract_id == SupportTicket.contract_id)
        .where(ServiceContract.coverage_days.is_not(None), SupportTicket.status.in_(TICKETS_NOT_CLOSED),
               SupportTicket.created_at < end,
               sa.or_(SupportTicket.resolution_due_at >= start, SupportTicket.response_due_at >= start))
        .with_for_update(of=SupportTicket)).all()
    for ticket in touched:
        refresh_sla(session, ticket)
    return len(touched)


def holiday_errors(day: date | None, name: str | None) -> dict[str, str]:
    """What is wrong with a new holiday's fields (no side effect: the page shows it with shape errors)."""
    errors = {}
    if day is None:
        errors["day"] = "Enter the date as YYYY-MM-DD."
    elif not FIRST_YEAR <= day.year <= LAST_YEAR:
        errors["day"] = f"Choose a date from {FIRST_YEAR} to {LAST_YEAR}."
    text = " ".join((name or "").split())
    if not text:
        errors["name"] = "Enter the holiday's name."
    elif len(text) > MAX_NAME:
        errors["name"] = f"The name can be at most {MAX_NAME} characters."
    return errors


def add_holiday(session, principal: policy.Principal, day: date | None, name: str | None) -> Holiday:
    """:raises Forbidden: not an admin. :raises Invalid: no date or name. :raises Conflict: the day is one already."""
    _check(principal)
    errors = holiday_errors(day, name)
    text = " ".join((name or "").split())
    if errors:
        first = next(iter(errors))
        raise Invalid(errors[first], first, errors)
    if session.scalar(sa.select(Holiday.holiday_id).where(Holiday.day == day)):
        raise Conflict(f"{day.isoformat()} is a holiday already.", "day")
    holiday = Holiday(day=day, name=text)
    session.add(holiday)
    session.flush()
    _refresh_touched(session, [day])
    events.emit(session, principal, "holiday.added", holiday, {"day": day.isoformat(), "name": text},
                changes={"day": (None, day.isoformat()), "name": (None, text)})
    return holiday


def remove_holiday(session, principal: policy.Principal, holiday_id: int) -> Holiday:
    """:raises Forbidden: not an admin. :raises NotFound: no such holiday."""
    _check(principal)
    holiday = session.get(Holiday, holiday_id, with_for_update=True)
    if holiday is None:
        raise NotFound("No such holiday.")
    session.delete(holiday)
    session.flush()
    _refresh_touched(session, [holiday.day])
    events.emit(session, principal, "holiday.removed", holiday, {"day": holiday.day.isoformat()},
                changes={"day": (holiday.day.isoformat(), None), "name": (holiday.name, None)})
    return holiday


def prefill(session, principal: policy.Principal, year: int | None, country: str | None) -> list[Holiday]:
    """Add a country's public holidays of `year` (from the `holidays` package); days already in the
    calendar are kept as they are. Returns the added ones.

    :raises Forbidden: not an admin. :raises Invalid: an unknown country or a year out of range.
    """
    import holidays as package

    _check(principal)
    year = _year(year)
    code = (country or "").strip().upper()
    if code not in package.list_supported_countries():
        raise Invalid("Choose a country from the list.", "country")
    public = package.country_holidays(code, years=year)
    existing = set(session.scalars(sa.select(Holiday.day).where(
        Holiday.day.between(date(year, 1, 1), date(year, 12, 31)))))
    added = []
    for day, name in sorted(public.items()):
        if day in existing:
            continue
        holiday = Holiday(day=day, name=" ".join(str(name).split())[:MAX_NAME])
        session.add(holiday)
        added.append(holiday)
    session.flush()
    _refresh_touched(session, [h.day for h in added])
    if added:
        events.emit_many(session, principal, "holiday.added", "holidays", [h.holiday_id for h in added])
    return added
