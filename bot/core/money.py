"""Money as `Decimal`: the one decimal context, sums, rounding for output, and formatting.

`MONEY` is the context of every money computation (valuation, totals, the store's sums and
differences): 60 significant digits and magnitudes below 10**52; a result beyond that raises
`decimal.Overflow` instead of being rounded into something that looks plausible. One account's
value must stay below `ACCOUNT_LIMIT` (10**40): any real balance fits with room to spare (the
largest fortunes are below 10**13 USD), a bigger one is refused where it is computed
(`bot.core.pricing.value_holdings` raises `ValueOutOfRange`, a per-account error), and so any
sum of accounts stays far inside the context and can be rounded to 8 places and printed
without error.

Unknown is `None`, never 0: every helper here passes `None` through (``format_money`` shows it
as "unknown"). Money reaches JSON as a number rounded to the currency's places
(`money_number`) or as its exact text (`decimal_text`).
"""
from __future__ import annotations

from decimal import (ROUND_HALF_EVEN, ROUND_HALF_UP, Context, Decimal, DivisionByZero, InvalidOperation, Overflow)
from typing import Iterable

MAX_DIGITS = 60
MONEY = Context(prec=MAX_DIGITS, rounding=ROUND_HALF_EVEN, Emax=51, Emin=-999_999,
                traps=[InvalidOperation, DivisionByZero, Overflow])  # below 10**52: 8 places always fit
ACCOUNT_EXPONENT = 40
ACCOUNT_LIMIT = Decimal(10) ** ACCOUNT_EXPONENT  # the smallest account value (or holding value) refused

FIAT_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥"}
FIAT = frozenset(FIAT_SYMBOLS) | {"AUD", "CAD", "CHF", "NZD", "SEK", "NOK", "DKK", "PLN", "SGD", "HKD", "KRW", "TRY",
                                  "BRL", "MXN", "ZAR", "INR"}
_STEPS = {places: Decimal(1).scaleb(-places) for places in (2, 8)}


class ValueOutOfRange(ArithmeticError):
    """A value of an account is at least `ACCOUNT_LIMIT` (or not finite): a per-account error,
    like a malformed response, never a crash of a whole report."""


def fits(value: Decimal) -> bool:
    """True when ``value`` is finite and below `ACCOUNT_LIMIT` in magnitude."""
    return value.is_finite() and (not value or value.adjusted() < ACCOUNT_EXPONENT)


def sum_money(values: Iterable[Decimal | None]) -> Decimal | None:
    """Sum of the known values (None ones skipped) in `MONEY`; None when none is known."""
    total = None
    add = MONEY.add
    for value in values:
        if value is not None:
            total = value if total is None else add(total, value)
    return total


def decimals_for(currency: str) -> int:
    """Places shown for an amount in ``currency``: 2 for fiat, 8 for everything else."""
    return 2 if currency in FIAT else 8


def quantize(value: Decimal, currency: str) -> Decimal:
    """``value`` rounded half-up to the places of ``currency`` (never raises for a value that fits)."""
    return value.quantize(_STEPS[decimals_for(currency)], rounding=ROUND_HALF_UP, context=MONEY)


def format_money(value: Decimal | None, currency: str) -> str:
    """``$1,234.56``, ``-€5.00``, ``0.12345678 BTC`` (rounded half-up; a value that rounds to 0
    has no sign); "unknown" for None."""
    if value is None:
        return "unknown"
    places = decimals_for(currency)
    rounded = quantize(value, currency)
    number = f"{rounded if rounded else rounded.copy_abs():,.{places}f}"  # no "-$0.00"
    symbol = FIAT_SYMBOLS.get(currency)
    if symbol:
        return f"-{symbol}{number[1:]}" if number.startswith("-") else f"{symbol}{number}"
    return f"{number} {currency}"


def money_number(value: Decimal | None, currency: str) -> float | None:
    """A JSON number rounded to the places of ``currency`` (the only place money becomes a float); None stays None."""
    return None if value is None else float(quantize(value, currency))


def decimal_text(value: Decimal | None) -> str | None:
    """The exact decimal as text (``"0.30"`` keeps its scale); None stays None."""
    return None if value is None else str(value)
