"""What every loopback fake does the same way, checked on all four through real ccxt.

Each test runs once per fake (``EXCHANGES``) or once per fake and key scheme (``ACCOUNTS``: Coinbase
has two); the tables next to a test hold what differs between exchanges (paths, ids, error codes,
the ccxt class an error becomes). One started server per fake class serves the whole module
(``FakePool``), reset before each test; tests that change prices or need auto-accounts start their
own. What is one exchange's own stays in ``tests/test_fake_<exchange>.py``.
"""
from __future__ import annotations

import base64
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import ccxt
import pytest
import requests

from tests.fakes import binance, coinbase, kraken, okx
from tests.fakes.ccxt_clients import (DEFAULT_TIMEOUT_MS, FakePool, MsNonce, load_public,
                                      make_client, paths, private_client, violations_with,
                                      wait_for)


@dataclass(frozen=True)
class Case:
    """One fake (and, for Coinbase, one key scheme) as the tests use it."""
    id: str
    fake_class: type
    #: an account's holdings in these tests (one of them zero; BTC is always 0.5)
    balances: dict
    #: the private path ccxt's fetch_balance calls
    balance_path: str
    #: auto-account api key -> (secret, passphrase) it must use (the module's derive_* functions)
    derive: Callable[[str], tuple]
    #: more ``add_account`` arguments
    account: dict = field(default_factory=dict)

    def __str__(self) -> str:
        return self.id

    def totals(self) -> dict:
        return {code: float(amount) for code, amount in self.balances.items()}


KRAKEN = Case("kraken", kraken.FakeKraken,
              {"BTC": "0.5", "USD": "1000", "EUR": "0", "DOT": "12.345"},
              "/0/private/BalanceEx", lambda key: (kraken.derive_secret(key), None))
BINANCE = Case("binance", binance.FakeBinance, {"BTC": "0.5", "USDT": "1000", "ETH": "0"},
               "/api/v3/account", lambda key: (binance.derive_secret(key), None))
OKX = Case("okx", okx.FakeOKX, {"BTC": "0.5", "USDT": "1000", "ETH": "0"},
           "/api/v5/account/balance",
           lambda key: (okx.derive_secret(key), okx.derive_passphrase(key)))
COINBASE = Case("coinbase-cdp", coinbase.FakeCoinbase,
                {"BTC": "0.5", "USD": "1000", "ETH": "0", "DOT": "12.3456789"},
                "/api/v3/brokerage/accounts", lambda key: (coinbase.derive_secret(key), None),
                {"scheme": "cdp"})
COINBASE_HMAC = Case("coinbase-hmac", coinbase.FakeCoinbase, COINBASE.balances,
                     COINBASE.balance_path, COINBASE.derive, {"scheme": "hmac"})

#: one case per fake
EXCHANGES = [KRAKEN, BINANCE, OKX, COINBASE]
#: one case per fake and key scheme
ACCOUNTS = EXCHANGES + [COINBASE_HMAC]
#: the fakes whose requests carry a timestamp checked against the server clock
TIMESTAMP_SIGNERS = [BINANCE, OKX, COINBASE, COINBASE_HMAC]

EXPIRED = "request timestamp expired"   # Coinbase's message for every timestamp/nonce breach


def cases(selection):
    return pytest.mark.parametrize("case", selection, ids=str)


@pytest.fixture(scope="module")
def pool():
    shared = FakePool()
    yield shared
    shared.close()


@pytest.fixture
def public(pool, case):
    """A keyless client of the case's fake, markets loaded (once per module)."""
    return pool.public(case.fake_class)


@pytest.fixture
def fake(pool, case, public):
    """The case's shared fake, reset (after ``public`` loaded: its calls are not counted)."""
    return pool.fake(case.fake_class)


def new_account(case, fake, public, **client):
    """(creds, client) of a fresh account holding ``case.balances``."""
    return private_client(fake, public, case.balances, case.account, **client)


# ---------------------------------------------------------------------------------- public
USD_SYMBOLS = ("BTC/USD", "ETH/USD", "BTC/EUR", "EUR/USD", "DOT/EUR", "ETH/BTC", "USDT/USD",
               "USDC/USD")
USDT_SYMBOLS = ("BTC/USDT", "ETH/USDT", "DOT/USDT", "EUR/USDT", "USDC/USDT", "ETH/BTC", "BTC/EUR",
                "DOT/EUR")

#: paths a keyless load_markets calls (all public), then the path of fetch_tickers
PUBLIC_PATHS = {
    "kraken": (["/0/public/Assets", "/0/public/AssetPairs"], "/0/public/Ticker"),
    # spot only: no sapi/fapi/dapi
    "binance": (["/api/v3/exchangeInfo"], "/api/v3/ticker/24hr"),
    # spot only (ccxt's default adds FUTURES, SWAP and OPTION); no private currencies call
    "okx": (["/api/v5/public/instruments"], "/api/v5/market/tickers"),
    # fetch_currencies (v2), then products twice: spot, and product_type=FUTURE (empty)
    "coinbase-cdp": (["/v2/currencies", "/v2/currencies/crypto", "/v2/exchange-rates",
                      "/api/v3/brokerage/market/products", "/api/v3/brokerage/market/products"],
                     "/api/v3/brokerage/market/products"),
}
#: listed markets, some market ids, some tickers' last prices, some currency fields
MARKETS = {
    "kraken": (USD_SYMBOLS,
               {"BTC/USD": "XXBTZUSD", "ETH/BTC": "XETHXXBT", "EUR/USD": "ZEURZUSD",
                "DOT/EUR": "DOTEUR"},
               {"BTC/USD": 50000.0, "ETH/USD": 3000.0, "EUR/USD": 1.10, "DOT/EUR": 6.50,
                "USDT/USD": 1.0},
               {"USD": {"id": "ZUSD"}}),
    "binance": (USDT_SYMBOLS, {"BTC/USDT": "BTCUSDT"},
                {"BTC/USDT": 50000.0, "DOT/EUR": 6.5, "EUR/USDT": 1.1}, {}),
    "okx": (USDT_SYMBOLS, {"BTC/USDT": "BTC-USDT"},
            {"BTC/USDT": 50000.0, "DOT/EUR": 6.5, "EUR/USDT": 1.1}, {}),
    "coinbase-cdp": (USD_SYMBOLS, {"BTC/USD": "BTC-USD"}, {"BTC/USD": 50000.0, "DOT/EUR": 6.5},
                     {"BTC": {"name": "Bitcoin"}, "EUR": {"type": "fiat"}}),
}


@cases(EXCHANGES)
def test_markets_and_tickers_load_and_parse(case, fake):
    load_paths, ticker_path = PUBLIC_PATHS[case.id]
    symbols, ids, lasts, currencies = MARKETS[case.id]
    ex = make_client(fake)
    markets = ex.load_markets()
    assert paths(fake) == [("public", path) for path in load_paths]
    assert set(symbols) <= set(markets)
    assert all(m["spot"] and m["active"] for m in markets.values())
    assert {symbol: markets[symbol]["id"] for symbol in ids} == ids
    for code, fields in currencies.items():
        assert {name: ex.currencies[code][name] for name in fields} == fields
    tickers = ex.fetch_tickers()
    assert {symbol: tickers[symbol]["last"] for symbol in lasts} == lasts
    some = ex.fetch_tickers(["BTC/EUR", "ETH/BTC"])      # filtered as ccxt sends it
    assert set(some) == {"BTC/EUR", "ETH/BTC"}
    assert some["ETH/BTC"]["last"] == 0.06
    assert paths(fake)[len(load_paths):] == [("public", ticker_path)] * 2
    assert fake.violations == violations_with()


#: a market set_price adds (symbol, ccxt id, price), and a listed one it changes (symbol, price)
NEW_PRICES = {
    "kraken": (("SOL/EUR", "SOLEUR", "150.5"), ("DOT/EUR", "7.25")),
    "binance": (("SOL/USDT", "SOLUSDT", "150.25"), ("BTC/USDT", "61000.5")),
    "okx": (("SOL/USDT", "SOL-USDT", "150.25"), ("BTC/USDT", "61000.5")),
    "coinbase-cdp": (("SOL/EUR", "SOL-EUR", "123.45"), ("BTC/USD", "60000")),
}


@cases(EXCHANGES)
def test_set_price_adds_and_changes_markets(case):
    (symbol, market_id, price), (listed, listed_price) = NEW_PRICES[case.id]
    with case.fake_class() as fake:       # its own: prices are not reset between tests
        fake.set_price(symbol, price)
        ex = load_public(fake)
        assert ex.markets[symbol]["id"] == market_id
        fake.set_price(listed, listed_price)          # after load_markets: tickers read it live
        tickers = ex.fetch_tickers()
        assert tickers[symbol]["last"] == float(price)
        assert tickers[listed]["last"] == float(listed_price)


#: a path no fake serves, and the JSON body of its 404 (None: an HTML page)
NOT_FOUND = {
    "kraken": ("/0/public/Nope", {"error": ["EGeneral:Unknown method"]}),
    "binance": ("/api/v3/nope", None),
    "okx": ("/api/v5/nope", None),
    "coinbase-cdp": ("/api/v3/brokerage/nope",
                     {"error": "NOT_FOUND", "error_details": "route not found",
                      "message": "Not Found"}),
}


@cases(EXCHANGES)
def test_unknown_path_is_404_and_counted_nowhere(case, fake):
    path, body = NOT_FOUND[case.id]
    resp = requests.get(fake.url + path, timeout=2)
    assert resp.status_code == 404
    if body is None:
        assert resp.headers["Content-Type"] == "text/html"
    else:
        assert resp.json() == body
    assert fake.calls == []
    stats = requests.get(fake.url + "/__fake__/stats", timeout=2).json()
    assert stats == {"violations": violations_with(), "private_calls": 0, "public_calls": 0}
    assert fake.stats() == stats


# ---------------------------------------------------------------------------------- balances
@cases(ACCOUNTS)
def test_balances_round_trip_including_zero(case, fake, public):
    creds, ex = new_account(case, fake, public)
    balance = ex.fetch_balance()
    assert balance["total"] == case.totals()
    assert balance["free"] == case.totals()
    assert balance["used"] == dict.fromkeys(case.balances, 0.0)
    fake.set_balance(creds["api_key"], "BTC", "0.75")
    assert ex.fetch_balance()["total"]["BTC"] == 0.75
    assert paths(fake) == [("private", case.balance_path)] * 2
    assert fake.violations == violations_with()


#: an auto-account key, and the balance such an account starts with
AUTO_ACCOUNTS = {
    "kraken": (base64.b64encode(b"k" * 42).decode(), {"USD": 100.0, "BTC": 0.01}),
    "binance": ("K" * 64, {"USDT": 100.0, "BTC": 0.01}),
    "okx": ("11111111-2222-4333-8444-555555555555", {"USDT": 100.0, "BTC": 0.01}),
    "coinbase-cdp": ("organizations/11111111-2222-3333-4444-555555555555/apiKeys/"
                     "66666666-7777-8888-9999-000000000000", {"USD": 100.0, "BTC": 0.01}),
    "coinbase-hmac": ("AutoKey000000001", {"USD": 100.0, "BTC": 0.01}),
}


@cases(ACCOUNTS)
def test_auto_accounts_accept_derived_credentials(case):
    key, total = AUTO_ACCOUNTS[case.id]
    secret, passphrase = case.derive(key)
    creds = {"api_key": key, "api_secret": secret, "passphrase": passphrase}
    with case.fake_class(auto_accounts=True) as fake:
        ex = make_client(fake, creds)
        ex.load_markets()
        assert ex.fetch_balance()["total"] == total
        fake.set_balance(key, "ETH", "2")
        assert ex.fetch_balance()["total"]["ETH"] == 2.0
        other_secret = case.derive(key + "x")[0]          # derived for another key
        with pytest.raises(ccxt.AuthenticationError):
            make_client(fake, dict(creds, api_secret=other_secret), public=ex).fetch_balance()
        assert fake.violations == violations_with(signature=1)


# ---------------------------------------------------------------------------------- auth rules
#: a secret of the right format that is not the key's, and the error code ccxt's message carries
WRONG_SECRET = {
    "kraken": (base64.b64encode(b"\x01" * 64).decode(), None),
    "binance": ("x" * 64, "-1022"),
    "okx": ("0" * 32, "50113"),
    "coinbase-cdp": (coinbase.new_cdp_credentials()[1], None),
    "coinbase-hmac": ("x" * 32, None),
}


@cases(ACCOUNTS)
def test_wrong_secret_is_authentication_error(case, fake, public):
    wrong, code = WRONG_SECRET[case.id]
    creds = fake.add_account({"BTC": "1"}, **case.account)
    ex = make_client(fake, dict(creds, api_secret=wrong), public=public)
    with pytest.raises(ccxt.AuthenticationError, match=code):
        ex.fetch_balance()
    assert fake.violations == violations_with(signature=1)


#: the error code in ccxt's message for a key the fake does not know
UNKNOWN_KEY_CODE = {"binance": "-2015", "okx": "50111"}


@cases(ACCOUNTS)
def test_unknown_key_is_authentication_error(case, fake, public):
    creds = case.fake_class().add_account({"USD": "1"}, **case.account)  # never started: mints
    with pytest.raises(ccxt.AuthenticationError, match=UNKNOWN_KEY_CODE.get(case.id)):
        make_client(fake, creds, public=public).fetch_balance()
    assert fake.violations == violations_with(signature=1)


#: the client clock a request's nonce/timestamp comes from, how far it is turned back, and what
#: ccxt raises for a value lower than the key's previous one
LOWER_NONCE = {
    "kraken": ("nonce", 1000, ccxt.InvalidNonce, "EAPI:Invalid nonce"),
    "binance": ("nonce", 1000, ccxt.InvalidNonce, "-1021"),
    "okx": ("nonce", 1000, ccxt.InvalidNonce, "50102"),
    # Coinbase answers id "authentication_error", which ccxt matches before the message
    "coinbase-cdp": ("seconds", 10, ccxt.AuthenticationError, EXPIRED),    # the JWT's iat
    "coinbase-hmac": ("nonce", 1000, ccxt.AuthenticationError, EXPIRED),   # ms -> CB timestamp s
}


@cases(ACCOUNTS)
def test_lower_nonce_than_previous_is_a_nonce_violation(case, fake, public):
    clock_name, step, error, match = LOWER_NONCE[case.id]
    _creds, ex = new_account(case, fake, public)
    clock = [int(time.time() * (1000 if clock_name == "nonce" else 1))]
    setattr(ex, clock_name, lambda: clock[0])
    ex.fetch_balance()
    clock[0] -= step
    ex.options.pop("lastNonce", None)   # or ccxt's incrementing_nonce (kraken) hides it
    with pytest.raises(error, match=match) as info:
        ex.fetch_balance()
    assert type(info.value) is error
    assert fake.violations == violations_with(nonce=1)


#: the client clock, how far ahead of / behind the server it is put, what ccxt raises, and the
#: text of the error ahead and behind
TIMESTAMP_WINDOW = {
    # ccxt's binance sends recvWindow=10000
    "binance": ("nonce", 60_000, -20_000, ccxt.InvalidNonce, "ahead", "recvWindow"),
    "okx": ("nonce", 60_000, -60_000, ccxt.InvalidNonce, "50102", "50102"),
    # nbf 60 s ahead / exp 180 s past
    "coinbase-cdp": ("seconds", 60, -300, ccxt.AuthenticationError, EXPIRED, EXPIRED),
    "coinbase-hmac": ("nonce", 60_000, -60_000, ccxt.AuthenticationError, EXPIRED, EXPIRED),
}


@cases(TIMESTAMP_SIGNERS)
def test_timestamp_outside_window_is_a_nonce_violation(case, fake, public):
    """Too far ahead or behind the server clock is rejected and counted; a rejected timestamp
    does not become the key's "previous" one."""
    clock_name, ahead, behind, error, match_ahead, match_behind = TIMESTAMP_WINDOW[case.id]
    _creds, ex = new_account(case, fake, public)
    unit = 1000 if clock_name == "nonce" else 1
    for count, (offset, match) in enumerate(((ahead, match_ahead), (behind, match_behind)), 1):
        setattr(ex, clock_name, lambda offset=offset: int(time.time() * unit) + offset)
        with pytest.raises(error, match=match) as info:
            ex.fetch_balance()
        assert type(info.value) is error
        assert fake.violations == violations_with(nonce=count)
    delattr(ex, clock_name)             # ccxt's own clock again
    assert ex.fetch_balance()["total"]["BTC"] == 0.5
    assert fake.violations == violations_with(nonce=2)


# ---------------------------------------------------------------------------------- faults
#: injected fault -> the ccxt class fetch_balance raises (exactly), the same on every fake
FAULTS_ALL = {
    "timeout": ccxt.RequestTimeout,
    "http_500": ccxt.ExchangeNotAvailable,
    "http_502": ccxt.ExchangeNotAvailable,
    "invalid_key": ccxt.AuthenticationError,
}
#: ... and per fake, where they differ (each answers as its exchange does; see its docstring)
FAULTS_OWN = {
    "kraken": {"http_429": ccxt.DDoSProtection, "invalid_nonce": ccxt.InvalidNonce},
    "binance": {"http_429": ccxt.DDoSProtection, "http_418": ccxt.DDoSProtection,
                "invalid_nonce": ccxt.InvalidNonce},
    "okx": {"http_429": ccxt.RateLimitExceeded, "invalid_nonce": ccxt.InvalidNonce,
            "http_503": ccxt.OnMaintenance, "system_busy": ccxt.ExchangeNotAvailable},
    "coinbase-cdp": {"http_429": ccxt.RateLimitExceeded, "invalid_nonce": ccxt.AuthenticationError},
}
#: where a fault raises another class once the client has made a successful private call:
#: ccxt's binance maps -2015 to DDoSProtection (a temporary ban) after
#: ``hasAlreadyAuthenticatedSuccessfully``; okx and the others raise the same class either way
AFTER_SUCCESS = {("binance", "invalid_key"): ccxt.DDoSProtection}
FAULT_ROWS = [pytest.param(case, fault, error, id=f"{case.id}-{fault}")
              for case in EXCHANGES
              for fault, error in {**FAULTS_ALL, **FAULTS_OWN[case.id]}.items()]


@pytest.mark.parametrize("case, fault, error", FAULT_ROWS)
def test_injected_fault_raises_its_ccxt_class_once(case, fake, public, fault, error):
    """A fault raises its class on a new client and, but for a timeout, again after a success
    (``AFTER_SUCCESS``); each is consumed by the call it failed."""
    fake.timeout_delay = 0.4
    creds, ex = new_account(case, fake, public)
    key = creds["api_key"]
    expected = [error]
    if fault != "timeout":
        expected.append(AFTER_SUCCESS.get((case.id, fault), error))
    for exc in expected:
        done = len(fake.private_calls(key)) + 1
        fake.inject(fault, api_key=key)
        ex.timeout = 150 if fault == "timeout" else DEFAULT_TIMEOUT_MS   # < the fake's hold
        with pytest.raises(exc) as info:
            ex.fetch_balance()
        assert type(info.value) is exc
        # the faulted request is over server side (a timeout's held answer too): its record
        # cannot land in a later test's counters
        wait_for(lambda: len(fake.private_calls(key)) == done)
        ex.timeout = DEFAULT_TIMEOUT_MS
        assert ex.fetch_balance()["total"]["BTC"] == 0.5   # the fault was consumed
    assert fake.violations == violations_with()


#: what ccxt makes of a 200 whose body is truncated JSON. None: nothing is raised, fetch_balance
#: returns an empty balance whose ``info`` is the raw text (the product must check for that).
#: Coinbase: a plain TypeError (ccxt's v3 fetch_balance indexes the undecoded str).
MALFORMED_JSON = {"kraken": None, "binance": None, "okx": None, "coinbase-cdp": TypeError}


@cases(EXCHANGES)
def test_injected_malformed_json(case, fake, public):
    creds, ex = new_account(case, fake, public)
    fake.inject("malformed_json", api_key=creds["api_key"])
    error = MALFORMED_JSON[case.id]
    if error is None:
        balance = ex.fetch_balance()
        assert isinstance(balance["info"], str)
        assert balance["total"] == {}
    else:
        with pytest.raises(error) as info:
            ex.fetch_balance()
        assert type(info.value) is error
    assert ex.fetch_balance()["total"] == case.totals()   # one shot only
    assert fake.violations == violations_with()


# ---------------------------------------------------------------------------------- pacing
#: what ccxt raises (exactly) for a call of one key closer than min_interval to its previous one,
#: and a text of the exchange's answer
SPACING = {
    "kraken": (ccxt.DDoSProtection, "EAPI:Rate limit exceeded"),
    "binance": (ccxt.DDoSProtection, "-1003"),
    "okx": (ccxt.RateLimitExceeded, "50011"),
    "coinbase-cdp": (ccxt.RateLimitExceeded, "rate_limit_exceeded"),
}


@cases(EXCHANGES)
def test_spacing_violation_is_counted_and_rate_limited_per_key(case, fake, public):
    error, match = SPACING[case.id]
    fake.min_interval = 0.5
    _creds, ex = new_account(case, fake, public)
    ex.fetch_balance()
    with pytest.raises(error, match=match) as info:
        ex.fetch_balance()
    assert type(info.value) is error
    assert fake.violations == violations_with(spacing=1)
    new_account(case, fake, public)[1].fetch_balance()      # spacing is per key
    assert fake.violations == violations_with(spacing=1)


@cases(EXCHANGES)
def test_overlap_is_counted(case, fake, public):
    """Two clients of one key: the second asks while the first is in flight (held by latency)."""
    fake.latency = 0.2
    nonce = MsNonce()   # shared: a strictly-nonced fake must not see the two clash
    creds, first = new_account(case, fake, public, nonce=nonce)
    second = make_client(fake, creds, public=public, nonce=nonce)
    account = fake.accounts[creds["api_key"]]
    totals = []
    thread = threading.Thread(target=lambda: totals.append(first.fetch_balance()["total"]))
    thread.start()
    wait_for(lambda: account.last_nonce is not None)   # the first passed its checks, in flight
    totals.append(second.fetch_balance()["total"])
    thread.join()
    assert totals == [case.totals()] * 2
    assert fake.violations == violations_with(overlap=1)
    a, b = fake.private_calls(creds["api_key"])
    assert b.start < a.end and a.end - a.start >= 0.2     # latency waited server side
