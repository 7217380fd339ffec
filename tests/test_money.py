"""The one copy of the money and time helpers (bot.core.money, bot.core.timefmt) and the
valuation rule of bot.core.pricing.value_holdings: empty is 0, only-unpriced is unknown, too
large is an error of that account."""
from __future__ import annotations

import datetime as dt
import decimal
from decimal import Decimal as D

import pytest

from bot.core.money import (ACCOUNT_LIMIT, MONEY, ValueOutOfRange, decimal_text, format_money, money_number, quantize,
                            sum_money)
from bot.core.pricing import value_holdings
from bot.core.timefmt import format_age, iso, iso_utc, utc_from_timestamp

PRICES = {"USD": D(1), "BTC": D("50000")}


def value(amounts: dict):
    return value_holdings({k: D(v) for k, v in amounts.items()}, PRICES.get)


def test_an_account_with_only_unpriced_assets_is_unknown_not_zero():
    holdings, total, unpriced = value({"FOO": "3", "USD": "0"})
    assert total is None and unpriced == ("FOO",) and holdings["FOO"].value is None


def test_a_really_empty_account_is_zero():
    for amounts in ({}, {"USD": "0", "BTC": "0.000"}, {"FOO": "0"}):
        holdings, total, unpriced = value(amounts)
        assert total == 0 and isinstance(total, D) and holdings == {} and unpriced == ()


def test_priced_holdings_are_summed_and_unpriced_ones_listed():
    _, total, unpriced = value({"USD": "10", "BTC": "0.5", "FOO": "1"})
    assert total == D("25010.0") and unpriced == ("FOO",)


def test_amounts_multiply_exactly_beyond_28_digits():
    _, total, _ = value({"BTC": "12345678.1234567891234567891"})
    assert total == D("617283906172.839456172839455000")         # 30 significant digits, none lost


@pytest.mark.parametrize("amounts", [{"USD": "1e40"}, {"BTC": "1e36"}, {"USD": "6e39", "BTC": "1e35"},
                                     {"FOO": "1e41"}])
def test_a_value_at_or_beyond_the_account_limit_is_value_out_of_range(amounts):
    with pytest.raises(ValueOutOfRange, match=r"1E\+40"):
        value(amounts)


def test_just_below_the_limit_is_a_value_and_prints():
    _, total, _ = value({"USD": "9" * 40})
    assert total < ACCOUNT_LIMIT
    assert format_money(total, "USD") == "$" + ",".join(["9" * 1] + ["999"] * 13) + ".00"
    assert money_number(total, "USD") == float("9" * 40)
    assert quantize(total, "BTC") == total                              # 8 places still fit


def test_the_money_context_traps_overflow_instead_of_rounding():
    with pytest.raises(decimal.Overflow):
        MONEY.multiply(D("1e30"), D("1e30"))
    assert MONEY.add(D("0.1"), D("0.2")) == D("0.3")
    assert MONEY.prec == 60


def test_sum_money_skips_unknown_and_keeps_unknown_unknown():
    assert sum_money([None, D("1.5"), None, D("2")]) == D("3.5")
    assert sum_money([None, None]) is None and sum_money([]) is None


@pytest.mark.parametrize("amount, currency, text", [
    (D("1234.565"), "USD", "$1,234.57"), (D("-5"), "EUR", "-€5.00"), (D("-0.001"), "USD", "$0.00"),
    (D("0.123456789"), "BTC", "0.12345679 BTC"), (None, "USD", "unknown"),
])
def test_format_money(amount, currency, text):
    assert format_money(amount, currency) == text


def test_json_helpers_pass_unknown_through():
    assert money_number(D("0.005"), "USD") == 0.01 and money_number(None, "USD") is None
    assert decimal_text(D("0.30")) == "0.30" and decimal_text(None) is None


def test_time_helpers():
    moment = utc_from_timestamp(1_767_225_600.25)
    assert moment == dt.datetime(2026, 1, 1, 0, 0, 0, 250000, dt.timezone.utc)
    assert iso_utc(1_767_225_600.25) == "2026-01-01T00:00:00Z" and iso_utc(None) is None
    assert iso(moment) == "2026-01-01T00:00:00.250000Z" and iso(None) is None
    assert [format_age(s) for s in (None, 59.9, 60, 3599, 3600, 86400 * 3)] == ["never read", "59s", "1m", "59m",
                                                                                  "1h", "3d"]
