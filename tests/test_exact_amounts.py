"""Amounts stay exact from the wire to the store, through ccxt's real parsing against the fakes.

Each fake sends amounts as strings (as the real exchanges do); ccxt would make floats of them.
Here a read through the product (manager → endpoint → ccxt → loopback fake) must keep every
digit, sum two exchange ids of one asset, and refuse a duplicated JSON key or a negative amount
as ``MalformedResponse`` without touching the other accounts.
"""
from __future__ import annotations

import json
from decimal import Decimal as D

import pytest

from bot.core.state import Status
from bot.exchanges.clients import MalformedResponse, parse_totals
from bot.exchanges.wire import ALIAS_MARK, strict_json
from tests.conftest import FAST_SETTINGS, broker_on, no_spacing
from tests.fakes import FakeKraken, fake_class
from tests.fakes.base import Response

# 18 significant digits: a float keeps ~17 (1234567890.12345678 -> 1234567890.1234567)
LONG = "1234567890.12345678"


class RawKraken(FakeKraken):
    """FakeKraken whose BalanceEx answers ``raw_body`` verbatim when it is set (bytes)."""

    raw_body: bytes | None = None

    def private_balance_ex(self, req, account):
        if self.raw_body is not None:
            return Response(200, self.raw_body)
        return super().private_balance_ex(req, account)


@pytest.fixture
def raw_kraken():
    with RawKraken() as fake:
        yield fake


def read_one(config, managers, fake, creds, exchange=None, **settings):
    config.settings(**FAST_SETTINGS, rate_limits=no_spacing(exchange or fake.name), **settings)
    config.user("alice", {exchange or fake.name: broker_on(fake, creds)})
    manager = config.manager()
    managers.append(manager)
    state, = manager.refresh()
    return manager, state


@pytest.mark.parametrize("exchange", ["kraken", "binance", "okx", "coinbase"])
def test_amounts_keep_every_digit(config, managers, exchange):
    assert repr(float(LONG)) != LONG  # what ccxt's default parsing would have kept
    with fake_class(exchange)() as fake:
        creds = fake.add_account({"BTC": LONG, "ETH": "2"})
        _, state = read_one(config, managers, fake, creds)
    assert state.status is Status.OK, state.error
    btc = state.holdings["BTC"]
    assert btc.amount == D(LONG) and str(btc.amount.normalize()) == LONG
    assert btc.price is not None and btc.value == btc.amount * btc.price  # valued from the exact amount
    assert state.holdings["ETH"].amount == D(2)


def test_kraken_issue_example_is_exact_in_state_and_store(config, managers):
    with FakeKraken() as fake:
        creds = fake.add_account({"BTC": "12345678.1234567891", "USD": "0.0001"})
        manager, state = read_one(config, managers, fake, creds)
        manager.history.flush()
        snapshot, = manager.history.store.latest_snapshots(["alice:kraken"])
        rows = {row.asset: row for row in manager.history.store.snapshot_assets(snapshot.id)}
    assert state.holdings["BTC"].amount == D("12345678.1234567891")
    assert rows["BTC"].amount == D("12345678.1234567891")
    assert rows["USD"].amount == D("0.0001")
    assert snapshot.balance == D("12345678.1234567891") * 50000 + D("0.0001")


def test_kraken_aliases_of_one_asset_are_summed(config, managers, raw_kraken):
    raw_kraken.raw_body = json.dumps({"error": [], "result": {
        "XXBT": {"balance": "0.0128000000", "hold_trade": "0.0000000000"},
        "XBT": {"balance": "0.0128000000", "hold_trade": "0.0000000000"},
        "XETH": {"balance": "1.0000000000", "hold_trade": "0.5000000000"},
        "ETH": {"balance": "0.5000000000", "hold_trade": "0.0000000000"},
        "ZUSD": {"balance": "100.0000", "hold_trade": "0.0000"},
        "USD": {"balance": "0.5000", "hold_trade": "0.0000"},
    }}).encode()
    creds = raw_kraken.add_account({})
    _, state = read_one(config, managers, raw_kraken, creds)
    assert state.status is Status.OK, state.error
    amounts = {asset: h.amount for asset, h in state.holdings.items()}
    assert amounts == {"BTC": D("0.0256"), "ETH": D("1.5"), "USD": D("100.5")}
    assert state.holdings["BTC"].value == D(1280)          # not 640: neither id is dropped
    assert state.value == D(1280) + D("1.5") * 3000 + D("100.5")


@pytest.mark.parametrize("body, reason", [
    (b'{"error":[],"result":{"XXBT":{"balance":"1.0000000000","hold_trade":"0"},'
     b'"XXBT":{"balance":"2.0000000000","hold_trade":"0"}}}', "duplicate JSON key 'XXBT'"),  # last would win
    (b'{"error":[],"result":{"ZUSD":{"balance":"10.0000","balance":"99.0000","hold_trade":"0"}}}',
     "duplicate JSON key 'balance'"),
    (b'{"error":[],"result":{"ZUSD":{"balance":"-10.0000","hold_trade":"0.0000"}}}', "negative amount of USD"),
], ids=["duplicate-asset", "duplicate-field", "negative"])
def test_duplicate_keys_and_negative_amounts_are_malformed(config, managers, raw_kraken, body, reason):
    raw_kraken.raw_body = body
    good = FakeKraken()
    with good:
        bob = good.add_account({"USD": "5"})
        creds = raw_kraken.add_account({})
        config.settings(**FAST_SETTINGS, rate_limits=no_spacing("kraken"))
        config.user("alice", {"kraken": broker_on(raw_kraken, creds)})
        config.user("bob", {"kraken": broker_on(good, bob)})
        manager = config.manager()
        managers.append(manager)
        states = {s.account_id: s for s in manager.refresh()}
    alice = states["alice:kraken"]
    assert alice.status is Status.ERROR and alice.value is None
    assert alice.error.startswith("MalformedResponse: ") and reason in alice.error, alice.error
    assert len(raw_kraken.private_calls(creds["api_key"])) == 1      # not retried
    assert states["bob:kraken"].status is Status.OK and states["bob:kraken"].value == D(5)


def test_negative_amount_on_the_wire_from_a_fake_account(config, managers):
    with FakeKraken() as fake:
        creds = fake.add_account({"BTC": "1", "ETH": "-0.5"})
        _, state = read_one(config, managers, fake, creds)
    assert state.status is Status.ERROR
    assert state.error == "MalformedResponse: negative amount of ETH: -0.5000000000"


def test_strict_json_keeps_number_text_and_refuses_duplicates():
    assert strict_json('{"a": 12345678.1234567891, "b": [1, 2.50], "c": "x"}') == {
        "a": "12345678.1234567891", "b": [1, "2.50"], "c": "x"}
    with pytest.raises(MalformedResponse, match="duplicate JSON key 'k'"):
        strict_json('{"outer": {"k": 1, "k": 2}}')
    with pytest.raises(ValueError):  # not JSON: ccxt then hands the body on as text
        strict_json('{"truncated')


def test_parse_totals_sums_marked_aliases_and_checks_each_entry():
    balance = {"info": {}, "total": {"BTC": "0.1", f"BTC{ALIAS_MARK}XBT": "0.2", "EUR": None},
               "EUR": {"free": "1.25", "used": "0.75"}}
    assert parse_totals(balance) == {"BTC": D("0.3"), "EUR": D("2.00")}
    with pytest.raises(MalformedResponse, match="amount of BTC is not a number"):
        parse_totals({"info": {}, "total": {"BTC": "abc"}})
    with pytest.raises(MalformedResponse, match="amount of EUR is not a number"):
        parse_totals({"info": {}, "total": {"EUR": None}, "EUR": {"free": "x", "used": "1"}})
    with pytest.raises(MalformedResponse, match="no amount for EUR"):
        parse_totals({"info": {}, "total": {"EUR": None}, "EUR": {}})
    with pytest.raises(MalformedResponse, match="not JSON"):
        parse_totals({"info": "<html>", "total": {}})
