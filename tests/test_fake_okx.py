"""FakeOKX driven through real ccxt (v5 spot REST), the way the product drives it."""
from __future__ import annotations

import threading
import time

import ccxt
import pytest
import requests

from bot.exchange_urls import point_exchange_at
from tests.fakes.okx import CCXT_OPTIONS, FakeOKX, derive_passphrase, derive_secret


@pytest.fixture(scope="module")
def fake():
    with FakeOKX() as server:
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
    ex = ccxt.okx(config)
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
    # spot only (ccxt's default adds FUTURES, SWAP and OPTION), no private currencies call
    assert paths(fake) == [("public", "/api/v5/public/instruments")]
    assert {"BTC/USDT", "ETH/USDT", "DOT/USDT", "EUR/USDT", "USDC/USDT", "ETH/BTC",
            "BTC/EUR", "DOT/EUR"} <= set(markets)
    assert all(m["spot"] and m["active"] for m in markets.values())
    assert markets["BTC/USDT"]["id"] == "BTC-USDT"
    tickers = ex.fetch_tickers()
    assert paths(fake)[-1] == ("public", "/api/v5/market/tickers")
    assert tickers["BTC/USDT"]["last"] == 50000.0
    assert tickers["DOT/EUR"]["last"] == 6.5
    assert tickers["EUR/USDT"]["last"] == 1.1


def test_set_price_adds_market():
    with FakeOKX() as fake:
        fake.set_price("SOL/USDT", "150.25")
        fake.set_price("BTC/USDT", "61000.5")
        ex = make(fake)
        assert ex.load_markets()["SOL/USDT"]["id"] == "SOL-USDT"
        tickers = ex.fetch_tickers()
        assert tickers["SOL/USDT"]["last"] == 150.25
        assert tickers["BTC/USDT"]["last"] == 61000.5


def test_fetch_balance_returns_balances_including_zero(fake, public):
    creds, ex = private(fake, public, {"BTC": "0.5", "USDT": "1000", "ETH": "0"})
    balance = ex.fetch_balance()
    assert balance["total"] == {"BTC": 0.5, "USDT": 1000.0, "ETH": 0.0}
    detail = balance["info"]["data"][0]["details"][0]
    assert (detail["ccy"], detail["eq"], detail["availBal"], detail["eqUsd"]) == \
        ("BTC", "0.5", "0.5", "25000")
    fake.set_balance(creds["api_key"], "BTC", "0.75")
    assert ex.fetch_balance()["total"]["BTC"] == 0.75
    assert paths(fake) == [("private", "/api/v5/account/balance")] * 2
    assert fake.violations == dict.fromkeys(fake.violations, 0)


def test_keyed_load_markets_fetches_currencies_privately(fake):
    """ccxt's okx.fetch_currencies is private and has no option to turn it off: an instance WITH
    keys calls it from load_markets. The fake serves it (signed, counted as private)."""
    creds = fake.add_account({"USDT": "1"})
    ex = make(fake, creds)
    ex.load_markets()
    assert paths(fake) == [("private", "/api/v5/asset/currencies"),
                           ("public", "/api/v5/public/instruments")]
    assert ex.currencies["EUR"]["type"] == "fiat"
    assert fake.violations == dict.fromkeys(fake.violations, 0)


def test_wrong_secret_is_authentication_error(fake, public):
    creds = fake.add_account({"BTC": "1"})
    ex = make(fake, dict(creds, api_secret="0" * 32))
    ex.set_markets_from_exchange(public)
    with pytest.raises(ccxt.AuthenticationError, match="50113"):
        ex.fetch_balance()
    assert fake.violations["signature"] == 1


def test_wrong_passphrase_is_authentication_error(fake, public):
    creds = fake.add_account({"BTC": "1"})
    ex = make(fake, dict(creds, passphrase="wrong-passphrase"))
    ex.set_markets_from_exchange(public)
    with pytest.raises(ccxt.AuthenticationError, match="50105"):
        ex.fetch_balance()
    assert fake.violations["signature"] == 1


def test_unknown_key_is_authentication_error(fake, public):
    ex = make(fake, {"api_key": "00000000-0000-4000-8000-000000000000",
                     "api_secret": "A" * 32, "passphrase": "p"})
    ex.set_markets_from_exchange(public)
    with pytest.raises(ccxt.AuthenticationError, match="50111"):
        ex.fetch_balance()
    assert fake.violations["signature"] == 1


def test_lower_timestamp_is_invalid_nonce(fake, public):
    creds, ex = private(fake, public)
    clock = [int(time.time() * 1000)]
    ex.nonce = lambda: clock[0]
    ex.fetch_balance()
    clock[0] -= 1000
    with pytest.raises(ccxt.InvalidNonce, match="50102"):
        ex.fetch_balance()
    assert fake.violations["nonce"] == 1
    assert fake.violations["signature"] == 0


def test_timestamp_outside_window_is_invalid_nonce(fake, public):
    creds, ex = private(fake, public)
    ex.nonce = lambda: int(time.time() * 1000) + 60000
    with pytest.raises(ccxt.InvalidNonce, match="50102"):
        ex.fetch_balance()
    ex.nonce = lambda: int(time.time() * 1000) - 60000
    with pytest.raises(ccxt.InvalidNonce, match="50102"):
        ex.fetch_balance()
    assert fake.violations["nonce"] == 2
    del ex.nonce   # a rejected timestamp does not poison the key's "previous" timestamp
    assert ex.fetch_balance()["total"]["BTC"] == 0.5
    assert fake.violations["nonce"] == 2


@pytest.mark.parametrize("fault, error", [
    ("http_500", ccxt.ExchangeNotAvailable),
    ("http_502", ccxt.ExchangeNotAvailable),
    ("http_503", ccxt.OnMaintenance),
    ("system_busy", ccxt.ExchangeNotAvailable),
    ("http_429", ccxt.RateLimitExceeded),
    ("invalid_key", ccxt.AuthenticationError),
    ("invalid_nonce", ccxt.InvalidNonce),
])
def test_injected_fault_maps_to_ccxt_error(fake, public, fault, error):
    creds, ex = private(fake, public)
    ex.fetch_balance()   # okx has no "already authenticated" quirk: same class either way
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


def test_spacing_violation_is_counted_and_rate_limited(fake, public):
    fake.min_interval = 0.5
    creds, ex = private(fake, public)
    ex.fetch_balance()
    with pytest.raises(ccxt.RateLimitExceeded, match="50011"):
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


def test_auto_accounts_accept_derived_credentials():
    with FakeOKX(auto_accounts=True) as fake:
        key = "11111111-2222-4333-8444-555555555555"
        ex = make(fake, {"api_key": key, "api_secret": derive_secret(key),
                         "passphrase": derive_passphrase(key)})
        ex.load_markets()
        assert ex.fetch_balance()["total"] == {"USDT": 100.0, "BTC": 0.01}


def test_unknown_path_is_404_and_counted_nowhere(fake):
    resp = requests.get(fake.url + "/api/v5/nope", timeout=2)
    assert resp.status_code == 404
    assert fake.calls == []
    assert requests.get(fake.url + "/__fake__/stats", timeout=2).json()["public_calls"] == 0
