"""Money is Decimal, rounded half-up to cents in this one place."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")


def to_cents(value: Decimal | int | str) -> Decimal:
    """`value` as Decimal rounded half-up to cents. Never pass a float."""
    if isinstance(value, float):
        raise TypeError("money must not be a float; pass Decimal, int or str")
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)
