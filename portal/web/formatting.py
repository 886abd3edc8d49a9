"""Template filters: times in the reader's zone, relative times, hours and numbers (never "4E+1")."""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from flask import Flask, current_app
from markupsafe import Markup, escape

from portal.services import clock
from portal.services.numbers import plain_number


def _zone() -> ZoneInfo:
    """The reader's zone: a contact's customer's (customers.timezone), else the MSP's DISPLAY_TIMEZONE
    (staff, and pages without a reader). Asked once a request (a queue page formats 50 times)."""
    from flask import g, has_request_context

    if not has_request_context():
        return ZoneInfo(current_app.config["DISPLAY_TIMEZONE"])
    zone = g.get("_reader_zone")
    if zone is None:
        zone = g._reader_zone = _reader_zone()
    return zone


def _reader_zone() -> ZoneInfo:
    from portal.web.security import current_principal

    principal = current_principal()
    if principal is not None and principal.time_zone:
        try:
            return ZoneInfo(principal.time_zone)
        except (KeyError, ValueError):
            pass
    return ZoneInfo(current_app.config["DISPLAY_TIMEZONE"])


LEADING_ZERO = re.compile(r"^0(?=\d)")


def local_time(value: datetime | None, fmt: str = "%d %b %Y %H:%M") -> str:
    """An aware datetime in the display time zone, with the zone's abbreviation after a time of day
    (a zone beside a bare date says nothing: "12 Mar 2026 MST" read as a missing time)."""
    if value is None:
        return "—"
    local = value.astimezone(_zone())
    text = LEADING_ZERO.sub("", local.strftime(fmt))  # "01 Dec" -> "1 Dec", "00:05" -> "0:05", never ":05"
    shows_time = any(code in fmt for code in ("%H", "%I", "%M"))
    return f"{text} {local.tzname()}" if shows_time else text


def relative(value: datetime | None, now: datetime | None = None) -> str:
    """'in 3 h', '25 min ago', 'in 2 days', 'just now' (within a minute either way)."""
    if value is None:
        return "—"
    now = now or clock.now()
    seconds = (value - now).total_seconds()
    future = seconds >= 0
    seconds = abs(seconds)
    if seconds < 60:
        return "just now"  # short: the queue's columns hold it
    elif seconds < 3600:
        text = f"{int(seconds // 60)} min"
    elif seconds < 86400 * 2:
        hours = seconds / 3600
        text = f"{hours:.0f} h" if hours >= 10 else f"{hours:.1f} h".replace(".0 h", " h")
    else:
        text = f"{int(seconds // 86400)} days"
    return f"in {text}" if future else f"{text} ago"


def number(value: Decimal | int | None) -> str:
    """A number as people write it: never an exponent, no trailing zeros ("40", "7.25", "0.5").

    `Decimal.normalize()` alone gives "4E+1" for forty; this never does.
    """
    return plain_number(value)


def hours(value: Decimal | None) -> str:
    """Hours as "1.5 h", "40 h"."""
    if value is None:
        return "—"
    return f"{number(value)} h"


def percent(value) -> Markup:
    """"55 %" that never breaks between the number and its sign (it did in narrow stat cards)."""
    return Markup('<span class="percent">{} %</span>').format(plain_number(value))


def plain_decimals(value):
    """Jinja's finalize: a Decimal printed as it is (`{{ amount }}`) never shows in exponent form."""
    if isinstance(value, Decimal) and value.is_finite():
        return f"{value:f}"
    return value


def options(pairs, selected=None) -> Markup:
    """`<option>`s of (value, label) pairs in one pass (a long list, like the queue's 2,000 customers,
    costs a Jinja loop several milliseconds a request; the same HTML, escaped)."""
    chosen = "" if selected is None else str(selected)
    return Markup("".join(
        f'<option value="{escape(value)}"{" selected" if str(value) == chosen else ""}>{escape(label)}</option>'
        for value, label in pairs))


def register_filters(app: Flask) -> None:
    app.jinja_env.filters.update(local_time=local_time, relative=relative, hours=hours, number=number,
                                 percent=percent, options=options)
    app.jinja_env.finalize = plain_decimals
