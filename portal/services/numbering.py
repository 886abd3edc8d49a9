"""Human-facing numbers from PostgreSQL sequences: TKT-2026-000123, INV-2026-00042, CON-2026-001, PRJ-2026-007.

Sequences never hand out a number twice, even to two transactions at once; a rolled-back
transaction leaves a gap, which is fine for references people read (not for legal invoice
numbering gaps, which the invoices issue will have to decide on).
"""

from __future__ import annotations

import re
from datetime import date

import sqlalchemy as sa

from portal.models.base import (
    CONTRACT_NUMBER_SEQ,
    INVOICE_NUMBER_SEQ,
    PROJECT_NUMBER_SEQ,
    TICKET_NUMBER_SEQ,
)

# kind -> (sequence, prefix, digits)
FORMATS = {
    "ticket": (TICKET_NUMBER_SEQ, "TKT", 6),
    "invoice": (INVOICE_NUMBER_SEQ, "INV", 5),
    "contract": (CONTRACT_NUMBER_SEQ, "CON", 3),
    "project": (PROJECT_NUMBER_SEQ, "PRJ", 3),
}


def format_number(kind: str, year: int, value: int) -> str:
    _, prefix, digits = FORMATS[kind]
    return f"{prefix}-{year}-{value:0{digits}d}"


def number_pattern(kind: str, value: int) -> str:
    """A LIKE pattern for a number of any year ending in `value`, as people quote it ("48")."""
    _, prefix, digits = FORMATS[kind]
    return f"{prefix}-____-{value:0{digits}d}"


TICKET_NUMBER = re.compile(r"^\s*TKT-(\d{4})-(\d{1,9})\s*$", re.IGNORECASE)


def typed_ticket_number(text: str) -> str | None:
    """The ticket number someone typed ("tkt-2026-48", " TKT-2026-000048 ") as stored, or None."""
    found = TICKET_NUMBER.match(text)
    return format_number("ticket", int(found.group(1)), int(found.group(2))) if found else None


def next_number(session, kind: str, on: date) -> str:
    """The next number of `kind` ('ticket', 'invoice', 'contract', 'project') for a document dated `on`."""
    sequence = FORMATS[kind][0]
    value = session.execute(sa.select(sequence.next_value())).scalar_one()
    return format_number(kind, on.year, value)


def advance_past(session, kind: str, value: int) -> None:
    """Make sure the sequence hands out numbers above `value` (after rows loaded with their own numbers)."""
    sequence = FORMATS[kind][0]
    session.execute(
        sa.text("SELECT setval(CAST(:seq AS regclass), GREATEST(:value, (SELECT last_value FROM "
                + sequence.name + ")))"),
        {"seq": sequence.name, "value": value},
    )
