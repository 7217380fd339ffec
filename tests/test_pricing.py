"""Valuation: direct, inverse and cross rates in Decimal; unpriced assets are visible, never 0."""
from __future__ import annotations

from decimal import Decimal as D

from bot.core.money import MONEY
from bot.core.pricing import PriceBook, to_decimal, value_holdings

TICKERS = {
    "BTC/USD": {"last": 50000.0},
    "EUR/USD": {"last": 1.1},
    "DOT/EUR": {"last": 6.5},
    "USD/JPY": {"last": 150.0},
    "ETH/BTC": {"last": None, "close": None, "bid": 0.05, "ask": 0.07},
    "BTC/USD:USD": {"last": 1.0},  # a derivative: ignored
    "BAD/USD": {"last": 0},        # no usable price
}


def book() -> PriceBook:
    return PriceBook.from_tickers(TICKERS)


def test_direct_inverse_and_identity():
    b = book()
    assert b.price("BTC", "USD") == D("50000.0")
    assert b.price("USD", "USD") == 1
    assert b.price("JPY", "USD") == MONEY.divide(1, D("150.0"))   # inverses in the one money context (60 digits)
    assert b.price("USD", "EUR") == MONEY.divide(1, D("1.1"))


def test_cross_rates_through_eur_and_btc():
    b = book()
    assert b.price("DOT", "USD") == D("6.5") * D("1.1")          # DOT/EUR × EUR/USD
    assert b.price("ETH", "USD") == D("0.06") * D("50000.0")     # bid/ask midpoint × BTC/USD


def test_unknown_and_unusable_prices_are_none():
    b = book()
    assert b.price("XYZ", "USD") is None
    assert b.price("BAD", "USD") is None
    assert len(b) == 5


def test_value_holdings_keeps_unpriced_out_of_total_but_visible():
    holdings, total, unpriced = value_holdings(
        {"BTC": D("0.5"), "XYZ": D("7"), "USD": D("10"), "EUR": D("0")}, lambda a: book().price(a, "USD"))
    assert total == D("25010.00")
    assert unpriced == ("XYZ",)
    assert holdings["XYZ"].amount == 7 and holdings["XYZ"].value is None
    assert "EUR" not in holdings  # a zero holding is not listed


def test_empty_account_is_zero_not_unknown():
    holdings, total, unpriced = value_holdings({}, lambda a: None)
    assert total == 0 and isinstance(total, D) and holdings == {} and unpriced == ()


def test_to_decimal_is_exact_for_exchange_numbers():
    assert to_decimal("0.1") == D("0.1")
    assert to_decimal(0.1) == D("0.1")
    assert to_decimal(1e-8) == D("1E-8")
    assert to_decimal(None) is None and to_decimal("abc") is None and to_decimal(float("nan")) is None
    assert to_decimal(True) is None


def test_pegs_are_a_last_resort_for_exchanges_without_base_markets():
    binance_like = {"BTC/USDT": {"last": 50000}, "EUR/USDT": {"last": 1.1}, "DOT/EUR": {"last": 6.5}}
    pegged = PriceBook.from_tickers(binance_like, pegs={"USDT": "USD"})
    assert pegged.price("BTC", "USD") == D(50000)
    assert pegged.price("USDT", "USD") == 1
    assert pegged.price("DOT", "USD") == D("6.5") * D("1.1")
    assert PriceBook.from_tickers(binance_like).price("BTC", "USD") is None  # no pegs: unpriced
    with_usd = PriceBook.from_tickers({**binance_like, "USDT/USD": {"last": 0.99}}, pegs={"USDT": "USD"})
    assert with_usd.price("USDT", "USD") == D("0.99")  # a real market wins over the peg
