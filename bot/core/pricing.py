"""Valuation of holdings in one base currency from an exchange's last prices.

`PriceBook` holds the last price of each ``BASE/QUOTE`` spot pair. ``price(asset, base)`` tries
the asset itself (1), the direct pair, the inverse pair, then a cross through EUR, USDT, USDC or
BTC (e.g. DOT/EUR × EUR/USD), then the configured stablecoin pegs. An asset it cannot price is reported unpriced, never valued at 0.
A PriceBook is immutable once built except for its memo of answers (a dict written with single
assignments, safe to share between threads).
"""
from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Callable, Mapping

from bot.core.money import ACCOUNT_EXPONENT, MONEY, ValueOutOfRange, fits
from bot.core.state import Holding

CROSS_CURRENCIES = ("EUR", "USDT", "USDC", "BTC")
ONE = Decimal(1)
ZERO = Decimal(0)


def to_decimal(value) -> Decimal | None:
    """Decimal from an exchange number (str, int or float via its shortest repr); None if absent or bad."""
    if value is None or isinstance(value, bool):
        return None
    try:
        result = Decimal(value if isinstance(value, (str, int, Decimal)) else repr(value))
    except (InvalidOperation, TypeError, ValueError):
        return None
    return result if result.is_finite() else None


class PriceBook:
    """Last prices of one exchange. ``pegs`` ({"USDT": "USD"}) are used only when no market
    route reaches the base currency: an asset priced in USDT is then valued as if 1 USDT were
    1 USD (exchanges such as Binance and OKX have no USD markets at all)."""

    def __init__(self, pairs: Mapping[tuple[str, str], Decimal], pegs: Mapping[str, str] | None = None):
        self._pairs = dict(pairs)
        self._pegs = dict(pegs or {})
        self._memo: dict[tuple[str, str], Decimal | None] = {}

    @classmethod
    def from_tickers(cls, tickers: Mapping[str, Mapping], pegs: Mapping[str, str] | None = None) -> PriceBook:
        """From ccxt tickers: spot symbols only; last price, else close, else the bid/ask midpoint."""
        pairs = {}
        for symbol, ticker in tickers.items():
            if not isinstance(symbol, str) or ":" in symbol or symbol.count("/") != 1 or not isinstance(ticker, Mapping):
                continue
            price = to_decimal(ticker.get("last")) or to_decimal(ticker.get("close"))
            if price is None:
                bid, ask = to_decimal(ticker.get("bid")), to_decimal(ticker.get("ask"))
                price = MONEY.divide(MONEY.add(bid, ask), 2) if bid and ask else None
            if price is not None and price > 0:
                base, quote = symbol.split("/")
                pairs[(base, quote)] = price
        return cls(pairs, pegs)

    def __len__(self) -> int:
        return len(self._pairs)

    def _pair(self, asset: str, quote: str) -> Decimal | None:
        direct = self._pairs.get((asset, quote))
        if direct is not None:
            return direct
        inverse = self._pairs.get((quote, asset))
        return MONEY.divide(ONE, inverse) if inverse is not None else None

    def _route(self, asset: str, quote: str) -> Decimal | None:
        if asset == quote:
            return ONE
        result = self._pair(asset, quote)
        if result is None:
            for via in CROSS_CURRENCIES:
                if via in (asset, quote):
                    continue
                leg = self._pair(asset, via)
                if leg is not None:
                    rest = self._pair(via, quote)
                    if rest is not None:
                        return MONEY.multiply(leg, rest)
        return result

    def price(self, asset: str, base: str) -> Decimal | None:
        """The price of one ``asset`` in ``base``; pegs are the last resort (see the class docstring)."""
        key = (asset, base)
        if key in self._memo:
            return self._memo[key]
        result = self._route(asset, base)
        if result is None:
            for stable, fiat in self._pegs.items():
                if fiat == base:
                    result = self._route(asset, stable)
                    if result is not None:
                        break
        self._memo[key] = result
        return result


def value_holdings(amounts: Mapping[str, Decimal], price_of: Callable[[str], Decimal | None]
                   ) -> tuple[dict[str, Holding], Decimal | None, tuple[str, ...]]:
    """Value each non-zero amount; returns (holdings, value, unpriced assets).

    The value is the sum of the priced holdings (in `MONEY`); it is 0 when every amount is 0 (a
    really empty account) and None when no holding is priced and at least one is unpriced (the
    account holds something whose worth is unknown: never 0). Raises `ValueOutOfRange` when an
    amount, a holding's value or the sum is not below `ACCOUNT_LIMIT`."""
    holdings, unpriced, total = {}, [], None
    multiply, add = MONEY.multiply, MONEY.add
    for asset, amount in amounts.items():
        if amount == 0:
            continue
        price = None
        try:
            price = price_of(asset)  # a cross rate may overflow too
            value = multiply(amount, price) if price is not None else None
            if not fits(amount) or (value is not None and not fits(value)):
                raise ArithmeticError
        except ArithmeticError:  # decimal.Overflow and the like, or beyond the account limit
            raise ValueOutOfRange(f"{asset}: {_short(amount)} at {_short(price)} is beyond the largest value "
                                  f"accepted (1E+{ACCOUNT_EXPONENT})") from None
        holdings[asset] = Holding(amount=amount, price=price, value=value)
        if value is None:
            unpriced.append(asset)
        else:
            total = value if total is None else add(total, value)
    if total is None and not unpriced:
        total = ZERO
    elif total is not None and not fits(total):
        raise ValueOutOfRange(f"account value {_short(total)} is beyond the largest value accepted (1E+{ACCOUNT_EXPONENT})")
    return holdings, total, tuple(sorted(unpriced))


def _short(value: Decimal | None) -> str:
    return "no price" if value is None else f"{value:.6E}"
