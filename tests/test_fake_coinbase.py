"""FakeCoinbase driven through real ccxt (``ccxt.coinbase`` with the fake's CCXT_OPTIONS).

Both authentication schemes are exercised: CDP keys (ES256 JWT per request) and legacy HMAC keys.
ccxt's own rate limiter is off in these tests (the product replaces ``throttle`` anyway)."""
from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import ccxt
import pytest

from bot.exchange_urls import point_exchange_at
from tests.fakes.coinbase import CCXT_OPTIONS, FakeCoinbase, derive_secret, new_cdp_credentials

SCHEMES = ("cdp", "hmac")
BALANCES = {"BTC": "0.5", "USD": "1000", "ETH": "0", "DOT": "12.3456789"}


@pytest.fixture
def fake():
    with FakeCoinbase() as f:
        yield f


def make_exchange(fake, creds=None, timeout_ms=5000, public=None):
    """A ccxt.coinbase pointed at ``fake``; with ``public`` it shares that instance's markets."""
    config = {"timeout": timeout_ms, "enableRateLimit": False, "options": dict(CCXT_OPTIONS)}
    if creds is not None:
        config.update(apiKey=creds["api_key"], secret=creds["api_secret"],
                      password=creds["passphrase"])
    ex = ccxt.coinbase(config)
    point_exchange_at(ex, fake.url)
    if public is not None:
        ex.set_markets_from_exchange(public)
    return ex


@pytest.fixture
def public(fake):
    ex = make_exchange(fake)
    ex.load_markets()
    return ex


def private(fake, public, scheme="cdp", balances=None, **kw):
    creds = fake.add_account(dict(BALANCES if balances is None else balances), scheme=scheme)
    return creds, make_exchange(fake, creds, public=public, **kw)


def no_violations(fake):
    return all(v == 0 for v in fake.violations.values())


# ---------------------------------------------------------------------------- public data
def test_markets_and_tickers(fake):
    ex = make_exchange(fake)
    ex.load_markets()
    assert {"BTC/USD", "ETH/USD", "BTC/EUR", "EUR/USD", "DOT/EUR", "ETH/BTC", "USDT/USD",
            "USDC/USD"} <= set(ex.markets)
    assert ex.markets["BTC/USD"]["id"] == "BTC-USD" and ex.markets["BTC/USD"]["spot"]
    assert ex.currencies["BTC"]["name"] == "Bitcoin" and ex.currencies["EUR"]["type"] == "fiat"
    tickers = ex.fetch_tickers()
    assert tickers["BTC/USD"]["last"] == 50000
    assert tickers["DOT/EUR"]["last"] == 6.5
    assert ex.fetch_tickers(["ETH/BTC"])["ETH/BTC"]["last"] == 0.06
    paths = [c.path for c in fake.calls]
    assert all(c.kind == "public" for c in fake.calls)
    assert set(paths) == {"/v2/currencies", "/v2/currencies/crypto", "/v2/exchange-rates",
                          "/api/v3/brokerage/market/products"}
    assert no_violations(fake)


def test_set_price_adds_market(fake):
    fake.set_price("SOL/EUR", "123.45")
    ex = make_exchange(fake)
    ex.load_markets()
    assert ex.fetch_tickers()["SOL/EUR"]["last"] == 123.45
    fake.set_price("BTC/USD", "60000")
    assert ex.fetch_tickers(["BTC/USD"])["BTC/USD"]["last"] == 60000


def test_exchange_rates_and_time(fake):
    with urllib.request.urlopen(fake.url + "/v2/exchange-rates") as r:
        rates = json.load(r)["data"]
    assert rates["currency"] == "USD" and rates["rates"]["BTC"] == "0.00002"
    assert rates["rates"]["EUR"] == "0.909090909091"
    ex = make_exchange(fake)
    assert abs(ex.fetch_time() - time.time() * 1000) < 5000


# ---------------------------------------------------------------------------- balances
@pytest.mark.parametrize("scheme", SCHEMES)
def test_fetch_balance(fake, public, scheme):
    creds, ex = private(fake, public, scheme)
    balance = ex.fetch_balance()
    assert balance["total"] == {"BTC": 0.5, "USD": 1000.0, "ETH": 0.0, "DOT": 12.3456789}
    assert balance["free"]["ETH"] == 0.0 and balance["used"]["BTC"] == 0.0
    wallet = {a["currency"]: a for a in balance["info"]["accounts"]}
    assert wallet["BTC"]["available_balance"]["value"] == "0.5000000000000000"
    assert wallet["USD"]["type"] == "ACCOUNT_TYPE_FIAT"
    fake.set_balance(creds["api_key"], "BTC", "0.75")
    assert ex.fetch_balance()["total"]["BTC"] == 0.75
    calls = fake.private_calls(creds["api_key"])
    assert [c.path for c in calls] == ["/api/v3/brokerage/accounts"] * 2
    assert no_violations(fake)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_balance_pagination(scheme):
    with FakeCoinbase(page_size=2) as fake:
        ex = make_exchange(fake)
        ex.load_markets()
        codes = {"BTC": "1", "ETH": "2", "DOT": "3", "USD": "4", "EUR": "5"}
        creds, pv = private(fake, ex, scheme, balances=codes)
        balance = pv.fetch_balance()
        assert balance["total"] == {k: float(v) for k, v in codes.items()}
        assert len(fake.private_calls(creds["api_key"])) == 3   # 2 + 2 + 1 wallets
        assert no_violations(fake)


def test_keyed_instance_can_load_markets(fake):
    creds = fake.add_account({"USD": "1"})
    ex = make_exchange(fake, creds)
    ex.load_markets()   # also calls the private transaction_summary
    assert ex.markets["BTC/USD"]["taker"] == 0.012
    assert ex.fetch_balance()["total"] == {"USD": 1.0}
    assert no_violations(fake)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_auto_accounts(public, scheme):
    with FakeCoinbase(auto_accounts=True) as fake:
        key = ("organizations/11111111-2222-3333-4444-555555555555/apiKeys/"
               "66666666-7777-8888-9999-000000000000") if scheme == "cdp" else "AutoKey000000001"
        creds = {"api_key": key, "api_secret": derive_secret(key), "passphrase": None}
        ex = make_exchange(fake, creds, public=public)
        assert ex.fetch_balance()["total"] == {"USD": 100.0, "BTC": 0.01}
        bad = make_exchange(fake, dict(creds, api_secret=derive_secret(key + "x")), public=public)
        with pytest.raises(ccxt.AuthenticationError):
            bad.fetch_balance()
        assert fake.violations["signature"] == 1


# ---------------------------------------------------------------------------- auth rules
@pytest.mark.parametrize("scheme", SCHEMES)
def test_wrong_secret(fake, public, scheme):
    creds = fake.add_account({"USD": "1"}, scheme=scheme)
    wrong = new_cdp_credentials()[1] if scheme == "cdp" else "x" * 32
    ex = make_exchange(fake, dict(creds, api_secret=wrong), public=public)
    with pytest.raises(ccxt.AuthenticationError):
        ex.fetch_balance()
    assert fake.violations == {"nonce": 0, "spacing": 0, "overlap": 0, "signature": 1,
                               "public_spacing": 0}


@pytest.mark.parametrize("scheme", SCHEMES)
def test_unknown_key(fake, public, scheme):
    other = FakeCoinbase()   # never started: only mints credentials
    creds = other.add_account({"USD": "1"}, scheme=scheme)
    with pytest.raises(ccxt.AuthenticationError):
        make_exchange(fake, creds, public=public).fetch_balance()
    assert fake.violations["signature"] == 1


def test_hmac_lower_timestamp_is_nonce_violation(fake, public):
    _creds, ex = private(fake, public, "hmac")
    ex.fetch_balance()
    ex.nonce = lambda: int(time.time() * 1000) - 5000      # 5 s older, still inside the window
    with pytest.raises(ccxt.AuthenticationError, match="request timestamp expired"):
        ex.fetch_balance()
    assert fake.violations["nonce"] == 1 and fake.violations["signature"] == 0


def test_hmac_timestamp_outside_window(fake, public):
    _creds, ex = private(fake, public, "hmac")
    ex.nonce = lambda: int(time.time() * 1000) + 60_000    # 60 s in the future
    with pytest.raises(ccxt.AuthenticationError, match="request timestamp expired"):
        ex.fetch_balance()
    assert fake.violations["nonce"] == 1


def test_hmac_product_nonce_counter(fake, public):
    """The product's nonce(): strictly increasing per-key ms counter -> same-second timestamps."""
    _creds, ex = private(fake, public, "hmac")
    counter = [int(time.time() * 1000)]

    def nonce():
        counter[0] += 1
        return counter[0]
    ex.nonce = nonce
    for _ in range(3):
        ex.fetch_balance()
    assert no_violations(fake)


def test_cdp_replayed_jwt_nonce(fake, public):
    _creds, ex = private(fake, public, "cdp")
    ex.random_bytes = lambda length: "00" * length          # every JWT carries the same nonce
    ex.fetch_balance()
    with pytest.raises(ccxt.AuthenticationError, match="request timestamp expired"):
        ex.fetch_balance()
    assert fake.violations["nonce"] == 1 and fake.violations["signature"] == 0


def test_cdp_lower_iat(fake, public):
    _creds, ex = private(fake, public, "cdp")
    ex.fetch_balance()
    ex.seconds = lambda: int(time.time()) - 10
    with pytest.raises(ccxt.AuthenticationError):
        ex.fetch_balance()
    assert fake.violations["nonce"] == 1


def test_cdp_expired_jwt(fake, public):
    _creds, ex = private(fake, public, "cdp")
    ex.seconds = lambda: int(time.time()) - 300           # exp = now - 180
    with pytest.raises(ccxt.AuthenticationError):
        ex.fetch_balance()
    assert fake.violations["nonce"] == 1 and fake.violations["signature"] == 0


@pytest.mark.parametrize("signed_url", [
    "{url}/api/v3/brokerage/products",                    # other path
    "https://api.coinbase.com/api/v3/brokerage/accounts",  # other host
])
def test_cdp_uri_claim_checked(fake, public, signed_url):
    creds, ex = private(fake, public, "cdp")
    token = ex.create_auth_token(ex.seconds(), "GET", signed_url.format(url=fake.url))
    req = urllib.request.Request(fake.url + "/api/v3/brokerage/accounts?limit=250",
                                 headers={"Authorization": "Bearer " + token})
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(req)
    assert info.value.code == 401
    assert json.loads(info.value.read())["error"] == "unauthorized"
    assert fake.violations["signature"] == 1


# ---------------------------------------------------------------------------- faults, spacing
@pytest.mark.parametrize("fault, expected", [
    ("timeout", ccxt.RequestTimeout),
    ("http_500", ccxt.ExchangeNotAvailable),
    ("http_502", ccxt.ExchangeNotAvailable),
    ("http_429", ccxt.RateLimitExceeded),
    ("malformed_json", TypeError),      # ccxt's v3 fetch_balance indexes the undecoded str
    ("invalid_key", ccxt.AuthenticationError),
    ("invalid_nonce", ccxt.AuthenticationError),
])
def test_faults(fake, public, fault, expected):
    fake.timeout_delay = 0.5
    creds, ex = private(fake, public, "cdp", timeout_ms=200)
    fake.inject(fault, api_key=creds["api_key"])
    with pytest.raises(expected):
        ex.fetch_balance()
    if fault == "timeout":
        ex = make_exchange(fake, creds, public=public)      # fresh connection
    assert ex.fetch_balance()["total"]["BTC"] == 0.5          # the fault was consumed
    assert fake.violations["signature"] == 0 and fake.violations["nonce"] == 0


def test_spacing_violation(public):
    with FakeCoinbase(min_interval=0.5) as fake:
        _creds, ex = private(fake, public, "cdp")
        ex.fetch_balance()
        with pytest.raises(ccxt.RateLimitExceeded):
            ex.fetch_balance()
        assert fake.violations["spacing"] == 1


def test_unknown_path_and_stats(fake):
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(fake.url + "/api/v3/brokerage/nope")
    assert info.value.code == 404
    assert json.loads(info.value.read())["error"] == "NOT_FOUND"
    with urllib.request.urlopen(fake.url + "/__fake__/stats") as r:
        stats = json.load(r)
    assert stats["public_calls"] == 0 and stats["private_calls"] == 0
    assert set(stats["violations"]) == {"nonce", "spacing", "overlap", "signature",
                                        "public_spacing"}
