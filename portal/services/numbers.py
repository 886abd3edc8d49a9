"""Numbers as people write them: "40", "7.25", "0.5", never "4E+1" (Decimal.normalize's answer)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation


def plain_number(value: Decimal | int | str | None) -> str:
    """`value` without an exponent or trailing zeros; "—" for None, the text itself if it is no number."""
    if value is None:
        return "—"
    try:
        number = value if isinstance(value, Decimal) else Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        return str(value)
    if not number.is_finite():
        return str(number)
    text = f"{number:f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text == "-0" else text
