"""Money is Decimal, rounded half-up to cents in this one place."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")


def to_cents(value: Decimal | int | str) -> Decimal:
    """`value` as Decimal rounded half-up to cents. Never pass a float."""
    if isinstance(value, float):
        raise TypeError("money must not be a float; pass Decimal, int or str")
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


def format_money(amount: Decimal | int | str) -> str:
    """"$18,000.00", "-$40.00": the app's money format (templates' `money` macro), for messages and emails."""
    value = to_cents(amount)
    return f"-${-value:,.2f}" if value < 0 else f"${value:,.2f}"
