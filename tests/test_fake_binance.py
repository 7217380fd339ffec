"""FakeBinance driven through real ccxt (spot REST), the way the product drives it."""
from __future__ import annotations

import threading
import time

import ccxt
import pytest
import requests

from bot.exchange_urls import point_exchange_at
from tests.fakes.binance import CCXT_OPTIONS, FakeBinance, derive_secret


@pytest.fixture(scope="module")
def fake():
    with FakeBinance() as server:
        yield server


@pytest.fixture(autouse=True)
def clean(fake):
    fake.latency = 0.0
    fake.min_interval = 0.0
    fake.public_min_interval = 0.0
    fake.timeout_delay = 3.0
    fake.clear_faults()
    fake.reset_counters()
    yield


def make(fake, creds=None, timeout=2000, **extra):
    config = {"timeout": timeout, "enableRateLimit": False, "options": dict(CCXT_OPTIONS)}
    if creds is not None:
        config.update(apiKey=creds["api_key"], secret=creds["api_secret"],
                      password=creds["passphrase"])
    config.update(extra)
    ex = ccxt.binance(config)
    point_exchange_at(ex, fake.url)
    return ex


@pytest.fixture(scope="module")
def public(fake):
    ex = make(fake)
    ex.load_markets()
    return ex


def private(fake, public, balances=None, **extra):
    creds = fake.add_account(balances or {"BTC": "0.5", "USDT": "1000"})
    ex = make(fake, creds, **extra)
    ex.set_markets_from_exchange(public)
    return creds, ex


def paths(fake):
    return [(c.kind, c.path) for c in fake.calls]


def test_markets_and_tickers_load_and_parse(fake):
    ex = make(fake)
    markets = ex.load_markets()
    assert paths(fake) == [("public", "/api/v3/exchangeInfo")]  # spot only, no sapi/fapi/dapi
    assert {"BTC/USDT", "ETH/USDT", "DOT/USDT", "EUR/USDT", "USDC/USDT", "ETH/BTC",
            "BTC/EUR", "DOT/EUR"} <= set(markets)
    assert all(m["spot"] and m["active"] for m in markets.values())
    assert markets["BTC/USDT"]["id"] == "BTCUSDT"
    tickers = ex.fetch_tickers()
    assert paths(fake)[-1] == ("public", "/api/v3/ticker/24hr")
    assert tickers["BTC/USDT"]["last"] == 50000.0
    assert tickers["DOT/EUR"]["last"] == 6.5
    assert tickers["EUR/USDT"]["last"] == 1.1


def test_set_price_adds_market():
    with FakeBinance() as fake:
        fake.set_price("SOL/USDT", "150.25")
        fake.set_price("BTC/USDT", "61000.5")
        ex = make(fake)
        markets = ex.load_markets()
        assert markets["SOL/USDT"]["id"] == "SOLUSDT"
        tickers = ex.fetch_tickers()
        assert tickers["SOL/USDT"]["last"] == 150.25
        assert tickers["BTC/USDT"]["last"] == 61000.5


def test_fetch_balance_returns_balances_including_zero(fake, public):
    creds, ex = private(fake, public, {"BTC": "0.5", "USDT": "1000", "ETH": "0"})
    balance = ex.fetch_balance()
    assert balance["total"] == {"BTC": 0.5, "USDT": 1000.0, "ETH": 0.0}
    assert balance["info"]["balances"][0] == {"asset": "BTC", "free": "0.50000000",
                                              "locked": "0.00000000"}
    fake.set_balance(creds["api_key"], "BTC", "0.75")
    assert ex.fetch_balance()["total"]["BTC"] == 0.75
    assert paths(fake) == [("private", "/api/v3/account")] * 2
    assert fake.violations == dict.fromkeys(fake.violations, 0)


def test_keyed_load_markets_makes_no_private_call(fake):
    creds = fake.add_account({"USDT": "1"})
    ex = make(fake, creds)
    ex.load_markets()
    assert paths(fake) == [("public", "/api/v3/exchangeInfo")]


def test_wrong_secret_is_authentication_error(fake, public):
    creds = fake.add_account({"BTC": "1"})
    ex = make(fake, dict(creds, api_secret="x" * 64))
    ex.set_markets_from_exchange(public)
    with pytest.raises(ccxt.AuthenticationError, match="-1022"):
        ex.fetch_balance()
    assert fake.violations["signature"] == 1


def test_unknown_key_is_authentication_error(fake, public):
    ex = make(fake, {"api_key": "A" * 64, "api_secret": "s" * 64, "passphrase": None})
    ex.set_markets_from_exchange(public)
    with pytest.raises(ccxt.AuthenticationError, match="-2015"):
        ex.fetch_balance()
    assert fake.violations["signature"] == 1


def test_lower_timestamp_is_invalid_nonce(fake, public):
    creds, ex = private(fake, public)
    clock = [int(time.time() * 1000)]
    ex.nonce = lambda: clock[0]
    ex.fetch_balance()
    clock[0] -= 1000
    with pytest.raises(ccxt.InvalidNonce, match="-1021"):
        ex.fetch_balance()
    assert fake.violations["nonce"] == 1
    assert fake.violations["signature"] == 0


def test_timestamp_outside_recv_window_is_invalid_nonce(fake, public):
    creds, ex = private(fake, public)
    ex.nonce = lambda: int(time.time() * 1000) + 60000   # ahead of the server
    with pytest.raises(ccxt.InvalidNonce, match="ahead"):
        ex.fetch_balance()
    ex.nonce = lambda: int(time.time() * 1000) - 20000   # older than recvWindow (10 s in ccxt)
    with pytest.raises(ccxt.InvalidNonce, match="recvWindow"):
        ex.fetch_balance()
    assert fake.violations["nonce"] == 2
    del ex.nonce   # a rejected timestamp does not poison the key's "previous" timestamp
    assert ex.fetch_balance()["total"]["BTC"] == 0.5
    assert fake.violations["nonce"] == 2


@pytest.mark.parametrize("fault, error", [
    ("http_500", ccxt.ExchangeNotAvailable),
    ("http_502", ccxt.ExchangeNotAvailable),
    ("http_429", ccxt.DDoSProtection),
    ("http_418", ccxt.DDoSProtection),
    ("invalid_key", ccxt.AuthenticationError),
    ("invalid_nonce", ccxt.InvalidNonce),
])
def test_injected_fault_maps_to_ccxt_error(fake, public, fault, error):
    creds, ex = private(fake, public)
    fake.inject(fault, api_key=creds["api_key"])
    with pytest.raises(error):
        ex.fetch_balance()
    assert ex.fetch_balance()["total"]["BTC"] == 0.5   # the fault was consumed


def test_injected_timeout_is_request_timeout(fake, public):
    fake.timeout_delay = 0.5
    creds, ex = private(fake, public, timeout=200)
    fake.inject("timeout")
    with pytest.raises(ccxt.RequestTimeout):
        ex.fetch_balance()


def test_injected_malformed_json_is_silently_an_empty_balance(fake, public):
    """ccxt does not raise on a 200 whose body is not JSON: it hands the raw text to the parser,
    which yields a balance with no currencies. The product must check for that itself."""
    creds, ex = private(fake, public)
    fake.inject("malformed_json", api_key=creds["api_key"])
    balance = ex.fetch_balance()
    assert isinstance(balance["info"], str)
    assert balance["total"] == {}


def test_invalid_key_after_success_is_ddos_protection_in_ccxt(fake, public):
    """ccxt quirk: once an instance made a successful private call, binance -2015 is mapped to
    DDoSProtection (a temporary ban), not AuthenticationError."""
    creds, ex = private(fake, public)
    ex.fetch_balance()
    fake.inject("invalid_key", api_key=creds["api_key"])
    with pytest.raises(ccxt.DDoSProtection):
        ex.fetch_balance()


def test_spacing_violation_is_counted_and_rate_limited(fake, public):
    fake.min_interval = 0.5
    creds, ex = private(fake, public)
    ex.fetch_balance()
    with pytest.raises(ccxt.DDoSProtection, match="-1003"):
        ex.fetch_balance()
    assert fake.violations["spacing"] == 1


def test_overlap_is_counted(fake, public):
    fake.latency = 0.2
    creds, ex1 = private(fake, public)
    ex2 = make(fake, creds)
    ex2.set_markets_from_exchange(public)
    stamp = int(time.time() * 1000)   # equal timestamps are accepted: only overlap breaks here
    ex1.nonce = ex2.nonce = lambda: stamp
    threads = [threading.Thread(target=ex.fetch_balance) for ex in (ex1, ex2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert fake.violations["overlap"] == 1


def test_auto_accounts_accept_derived_secret():
    with FakeBinance(auto_accounts=True) as fake:
        key = "K" * 64
        ex = make(fake, {"api_key": key, "api_secret": derive_secret(key), "passphrase": None})
        ex.load_markets()
        assert ex.fetch_balance()["total"] == {"USDT": 100.0, "BTC": 0.01}


def test_unknown_path_is_404_and_counted_nowhere(fake):
    resp = requests.get(fake.url + "/api/v3/nope", timeout=2)
    assert resp.status_code == 404
    assert fake.calls == []
    assert requests.get(fake.url + "/__fake__/stats", timeout=2).json()["public_calls"] == 0
