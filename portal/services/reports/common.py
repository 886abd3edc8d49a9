"""What every report shares: its answer (rows, parameters, the business day it was computed for),
the CSV of exactly its table, the SVG chart's geometry, and the three rules the reports borrow
from billing (revenue, late, unbilled), each behind one function so billing's rules plug in here.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal

import sqlalchemy as sa

from portal.models import Invoice, InvoiceStatus
from portal.services import statements
from portal.services.audit_log import neutralise
from portal.services.errors import Invalid

PER_PAGE = 50


@dataclass(frozen=True)
class Column:
    key: str  # the CSV's and the API's name for it
    label: str  # the page's header
    kind: str = "text"  # text, number, money, percent, date, hours


@dataclass(frozen=True)
class Bar:
    """One bar of a chart: a label and its parts (name, value), drawn left to right."""

    label: str
    parts: tuple[tuple[str, float], ...]
    note: str = ""  # what the bar says in words (also the text alternative's line)
    mark: bool = False  # drawn with a heavier outline and a ▲ (e.g. a project over the threshold)
    short: str = ""  # the figure written at the bar's end


@dataclass(frozen=True)
class Chart:
    title: str
    bars: list[Bar]
    legend: tuple[tuple[str, str], ...]  # (part name, label)
    unit: str = ""  # "$", "h", "%"
    reference: float | None = None  # a vertical line (capacity 100 %, the 80 % threshold)
    reference_label: str = ""
    grouped: bool = False  # parts side by side (revenue beside cost) instead of stacked


@dataclass
class Report:
    name: str
    title: str
    parameters: dict
    as_of: date
    columns: list[Column]
    rows: list[dict]
    chart: Chart | None = None
    summary: list[tuple[str, str]] = field(default_factory=list)  # headline figures (label, text)
    fresh_at: datetime | None = None  # when a summary the report reads was last brought up to date
    computed_at: datetime | None = None  # when these figures were computed (reports.run sets it)

    def json(self) -> dict:
        return {"report": self.name, "parameters": {k: plain(v) for k, v in self.parameters.items()},
                "as_of": self.as_of.isoformat(), "rows": [{c.key: plain(row[c.key]) for c in self.columns}
                                                          for row in self.rows]}

    def csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow([c.key for c in self.columns])
        for row in self.rows:
            writer.writerow([neutralise(csv_cell(row[c.key])) for c in self.columns])
        return out.getvalue()

    def page(self, number: int) -> tuple[list[dict], int, int]:
        """(rows of page `number`, that page, how many pages): the page's table, PER_PAGE rows at a time."""
        pages = max(1, -(-len(self.rows) // PER_PAGE))
        number = min(max(number, 1), pages)
        return self.rows[(number - 1) * PER_PAGE:number * PER_PAGE], number, pages


def plain(value):
    """A JSON value: Decimals as decimal strings (money never a float), dates ISO 8601."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if hasattr(value, "value") and not isinstance(value, (int, float, str, bool)):
        return value.value
    return value


def csv_cell(value) -> str:
    """ISO 8601 dates, plain decimals (no currency sign, no thousands separator), enums by value."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(plain(value))


def percent(part, whole) -> Decimal | None:
    """part / whole as a percentage rounded half-up to one decimal; None when there is no whole."""
    if not whole:
        return None
    return (Decimal(part) * 100 / Decimal(whole)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


def bounded_int(value, name: str, low: int, high: int, default: int) -> int:
    """A whole number parameter from the URL or the API. :raises Invalid: not a number in [low, high]."""
    if value in (None, ""):
        return default
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise Invalid(f"Enter a whole number from {low} to {high}.", field=name) from None
    if not low <= number <= high:
        raise Invalid(f"Enter a whole number from {low} to {high}.", field=name)
    return number


def day(value, name: str, default: date) -> date:
    """A date parameter (YYYY-MM-DD). :raises Invalid: not a date."""
    if value in (None, ""):
        return default
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise Invalid("Enter a date as YYYY-MM-DD.", field=name) from None


# --- the rules borrowed from billing --------------------------------------------------------------

REVENUE_STATUSES = (InvoiceStatus.SENT, InvoiceStatus.PAID, InvoiceStatus.OVERDUE)


def revenue_invoice():
    """SQL: an invoice that counts as revenue: neither a draft nor cancelled (billing's rule)."""
    return Invoice.invoice_status.in_(REVENUE_STATUSES)


def late_invoice(today: date):
    """SQL twin of statements.is_late: overdue, or sent with its due date passed (the one overdue rule)."""
    return sa.or_(Invoice.invoice_status == InvoiceStatus.OVERDUE, statements.becomes_overdue(today))
