"""FakeKraken driven through real ccxt (ccxt.kraken pointed at the loopback server)."""
from __future__ import annotations

import base64
import subprocess
import sys
import threading
import time
from pathlib import Path

import ccxt
import pytest
import requests

from bot.exchange_urls import point_exchange_at
from tests.fakes import FakeKraken, fake_class
from tests.fakes.kraken import CCXT_OPTIONS, derive_secret

ROOT = Path(__file__).resolve().parents[1]


class MsNonce:
    """Strictly increasing per-key millisecond nonce, like the product's override."""

    def __init__(self):
        self.last = 0
        self.lock = threading.Lock()

    def __call__(self):
        with self.lock:
            self.last = max(self.last + 1, int(time.time() * 1000))
            return self.last


def make_public(fake):
    ex = ccxt.kraken({"enableRateLimit": False, "timeout": 2000, "options": dict(CCXT_OPTIONS)})
    point_exchange_at(ex, fake.url)
    return ex


def make_private(fake, public, creds, timeout=2000, secret=None):
    ex = ccxt.kraken({"apiKey": creds["api_key"], "secret": secret or creds["api_secret"],
                      "password": creds.get("passphrase"), "timeout": timeout,
                      "enableRateLimit": False, "options": dict(CCXT_OPTIONS)})
    ex.nonce = MsNonce()
    point_exchange_at(ex, fake.url)
    ex.set_markets_from_exchange(public)
    return ex


@pytest.fixture
def fake():
    with FakeKraken() as f:
        yield f


@pytest.fixture
def public(fake):
    ex = make_public(fake)
    ex.load_markets()
    return ex


def wait_for(predicate, timeout=2.0):
    """Poll a condition (not a sleep used as synchronisation: it checks the fake's state)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        threading.Event().wait(0.002)


# ---------------------------------------------------------------------------------- public
def test_markets_and_tickers(fake, public):
    for symbol in ("BTC/USD", "ETH/USD", "BTC/EUR", "EUR/USD", "DOT/EUR", "ETH/BTC", "USDT/USD",
                   "USDC/USD"):
        assert symbol in public.markets, symbol
    assert public.markets["BTC/USD"]["id"] == "XXBTZUSD"
    assert public.markets["ETH/BTC"]["id"] == "XETHXXBT"
    assert public.markets["EUR/USD"]["id"] == "ZEURZUSD"
    assert public.markets["DOT/EUR"]["id"] == "DOTEUR"
    assert public.currencies["USD"]["id"] == "ZUSD"
    tickers = public.fetch_tickers()
    assert tickers["BTC/USD"]["last"] == 50000.0
    assert tickers["ETH/USD"]["last"] == 3000.0
    assert tickers["EUR/USD"]["last"] == 1.10
    assert tickers["DOT/EUR"]["last"] == 6.50
    assert tickers["USDT/USD"]["last"] == 1.0
    # filtered by pair ids, as ccxt sends them
    some = public.fetch_tickers(["BTC/EUR", "ETH/BTC"])
    assert set(some) == {"BTC/EUR", "ETH/BTC"}
    assert [c.kind for c in fake.calls] == ["public"] * 4  # Assets, AssetPairs, Ticker x2


def test_set_price_changes_and_adds_markets(fake):
    fake.set_price("DOT/EUR", "7.25")
    fake.set_price("SOL/EUR", "150.5")
    ex = make_public(fake)
    ex.load_markets()
    assert ex.markets["SOL/EUR"]["id"] == "SOLEUR"
    tickers = ex.fetch_tickers()
    assert tickers["DOT/EUR"]["last"] == 7.25
    assert tickers["SOL/EUR"]["last"] == 150.5


def test_unknown_path_404_counts_nothing(fake):
    r = requests.get(fake.url + "/0/public/Nope", timeout=2)
    assert r.status_code == 404
    assert r.json() == {"error": ["EGeneral:Unknown method"]}
    assert fake.calls == []
    assert fake.stats()["public_calls"] == 0 and sum(fake.violations.values()) == 0


# ---------------------------------------------------------------------------------- private
def test_fetch_balance_including_zero(fake, public):
    creds = fake.add_account({"BTC": "0.5", "USD": "1000", "EUR": "0", "DOT": "12.345"})
    assert creds["passphrase"] is None
    assert len(base64.b64decode(creds["api_secret"])) == 64
    ex = make_private(fake, public, creds)
    bal = ex.fetch_balance()
    assert bal["total"] == {"BTC": 0.5, "USD": 1000.0, "EUR": 0.0, "DOT": 12.345}
    raw = bal["info"]["result"]
    assert raw["XXBT"] == {"balance": "0.5000000000", "hold_trade": "0.0000000000"}
    assert raw["ZUSD"]["balance"] == "1000.0000" and raw["ZEUR"]["balance"] == "0.0000"
    fake.set_balance(creds["api_key"], "BTC", "0.75")
    assert ex.fetch_balance()["total"]["BTC"] == 0.75
    # the legacy Balance endpoint, through ccxt's implicit API
    legacy = ex.privatePostBalance()
    assert legacy["result"]["XXBT"] == "0.7500000000"
    calls = fake.private_calls(creds["api_key"])
    assert [c.path for c in calls] == ["/0/private/BalanceEx"] * 2 + ["/0/private/Balance"]
    assert all(c.kind == "private" and c.end >= c.start for c in calls)
    assert sum(fake.violations.values()) == 0


def test_wrong_secret_is_authentication_error(fake, public):
    creds = fake.add_account({"BTC": "1"})
    wrong = base64.b64encode(b"\x01" * 64).decode()
    ex = make_private(fake, public, creds, secret=wrong)
    with pytest.raises(ccxt.AuthenticationError):
        ex.fetch_balance()
    assert fake.violations["signature"] == 1


def test_unknown_key_is_authentication_error(fake, public):
    creds = fake.add_account({"BTC": "1"})
    other = dict(creds, api_key="A" * 56)
    with pytest.raises(ccxt.AuthenticationError):
        make_private(fake, public, other).fetch_balance()
    assert fake.violations["signature"] == 1


def test_replayed_nonce_is_invalid_nonce(fake, public):
    creds = fake.add_account({"BTC": "1"})
    ex = make_private(fake, public, creds)
    ex.nonce = lambda: 1_700_000_000_000
    ex.fetch_balance()
    ex.options["lastNonce"] = 0            # defeat ccxt's own incrementing guard: replay
    with pytest.raises(ccxt.InvalidNonce):
        ex.fetch_balance()
    ex.options["lastNonce"] = 0
    ex.nonce = lambda: 1_600_000_000_000   # lower
    with pytest.raises(ccxt.InvalidNonce):
        ex.fetch_balance()
    assert fake.violations["nonce"] == 2
    ex.nonce = MsNonce()
    assert ex.fetch_balance()["total"]["BTC"] == 1.0


FAULTS = [
    ("timeout", ccxt.RequestTimeout),
    ("http_500", ccxt.ExchangeNotAvailable),
    ("http_502", ccxt.ExchangeNotAvailable),
    ("http_429", ccxt.DDoSProtection),
    ("invalid_key", ccxt.AuthenticationError),
    ("invalid_nonce", ccxt.InvalidNonce),
]


@pytest.mark.parametrize("fault,exc", FAULTS, ids=[f for f, _ in FAULTS])
def test_injected_fault_maps_to_ccxt_exception(fake, public, fault, exc):
    fake.timeout_delay = 0.4
    creds = fake.add_account({"BTC": "1"})
    ex = make_private(fake, public, creds, timeout=150)
    fake.inject(fault, api_key=creds["api_key"])
    with pytest.raises(exc) as info:
        ex.fetch_balance()
    assert type(info.value) is exc
    assert ex.fetch_balance()["total"]["BTC"] == 1.0   # one shot only
    assert sum(fake.violations.values()) == 0


def test_malformed_json_is_silent_in_ccxt_kraken(fake, public):
    """ccxt.kraken raises NOTHING for a 200 whose body is not JSON: fetch_balance returns an
    empty balance whose ``info`` is the raw text. Consumers must check ``info`` is a dict."""
    creds = fake.add_account({"BTC": "1"})
    ex = make_private(fake, public, creds)
    fake.inject("malformed_json")
    bal = ex.fetch_balance()
    assert isinstance(bal["info"], str) and bal["total"] == {}
    assert ex.fetch_balance()["total"] == {"BTC": 1.0}


def test_fault_for_one_key_leaves_others_alone(fake, public):
    a, b = fake.add_account({"BTC": "1"}), fake.add_account({"BTC": "2"})
    ex_a, ex_b = make_private(fake, public, a), make_private(fake, public, b)
    fake.inject("http_500", api_key=a["api_key"], count=2)
    assert ex_b.fetch_balance()["total"]["BTC"] == 2.0
    for _ in range(2):
        with pytest.raises(ccxt.ExchangeNotAvailable):
            ex_a.fetch_balance()
    assert ex_a.fetch_balance()["total"]["BTC"] == 1.0
    fake.inject("invalid_key")                        # any key
    with pytest.raises(ccxt.AuthenticationError):
        ex_b.fetch_balance()


def test_spacing_violation_back_to_back():
    with FakeKraken(min_interval=0.5) as fake:
        pub = make_public(fake)
        pub.load_markets()
        creds = fake.add_account({"BTC": "1"})
        ex = make_private(fake, pub, creds)
        ex.fetch_balance()
        with pytest.raises(ccxt.DDoSProtection) as info:   # EAPI:Rate limit exceeded
            ex.fetch_balance()
        assert type(info.value) is ccxt.DDoSProtection
        assert fake.violations["spacing"] == 1
        other = make_private(fake, pub, fake.add_account({"BTC": "1"}))
        other.fetch_balance()                              # spacing is per key
        assert fake.violations["spacing"] == 1


def test_overlap_counted():
    with FakeKraken() as fake:
        pub = make_public(fake)
        pub.load_markets()
        fake.reset_counters()
        fake.latency = 0.15
        creds = fake.add_account({"BTC": "1"})
        first, second = make_private(fake, pub, creds), make_private(fake, pub, creds)
        first.nonce = lambda: 1000
        second.nonce = lambda: 2000
        t = threading.Thread(target=first.fetch_balance)
        t.start()
        acct = fake.accounts[creds["api_key"]]
        wait_for(lambda: acct.last_nonce == 1000)              # first checked, now in flight
        second.fetch_balance()
        t.join()
        assert fake.violations["overlap"] == 1
        assert fake.violations["nonce"] == 0
        a, b = fake.private_calls(creds["api_key"])
        assert b.start < a.end and a.end - a.start >= 0.15     # latency waited server side


def test_public_spacing_counted():
    with FakeKraken(public_min_interval=0.5) as fake:
        ex = make_public(fake)
        ex.load_markets()            # Assets then AssetPairs back to back
        assert fake.violations["public_spacing"] == 1


def test_auto_accounts():
    with FakeKraken(auto_accounts=True) as fake:
        pub = make_public(fake)
        pub.load_markets()
        key = base64.b64encode(b"k" * 42).decode()
        creds = {"api_key": key, "api_secret": derive_secret(key)}
        ex = make_private(fake, pub, creds)
        assert ex.fetch_balance()["total"] == {"USD": 100.0, "BTC": 0.01}
        fake.set_balance(key, "ETH", "2")
        assert ex.fetch_balance()["total"]["ETH"] == 2.0
        bad = make_private(fake, pub, dict(creds, api_key=key[::-1]))   # secret of another key
        with pytest.raises(ccxt.AuthenticationError):
            bad.fetch_balance()
        assert fake.violations["signature"] == 1


def test_stats_and_reset_endpoints(fake, public):
    creds = fake.add_account({"BTC": "1"})
    make_private(fake, public, creds).fetch_balance()
    stats = requests.get(fake.url + "/__fake__/stats", timeout=2).json()
    assert stats == {"violations": {"nonce": 0, "spacing": 0, "overlap": 0, "signature": 0,
                                    "public_spacing": 0},
                     "private_calls": 1, "public_calls": 2}
    assert requests.post(fake.url + "/__fake__/reset", timeout=2).status_code == 200
    assert fake.stats()["private_calls"] == 0 and fake.calls == []


def test_keep_alive_and_raw_signature(fake):
    """Raw HTTP: one keep-alive connection serves several requests; a tampered body fails."""
    import hashlib
    import hmac

    creds = fake.add_account({"USD": "5"})
    secret = base64.b64decode(creds["api_secret"])
    session = requests.Session()

    def post(nonce, body=None):
        body = body if body is not None else f"nonce={nonce}"
        msg = b"/0/private/Balance" + hashlib.sha256(f"{nonce}nonce={nonce}".encode()).digest()
        sig = base64.b64encode(hmac.new(secret, msg, hashlib.sha512).digest()).decode()
        return session.post(fake.url + "/0/private/Balance", data=body,
                            headers={"API-Key": creds["api_key"], "API-Sign": sig,
                                     "Content-Type": "application/x-www-form-urlencoded"})

    assert post(1).json() == {"error": [], "result": {"ZUSD": "5.0000"}}
    assert post(2).json()["result"] == {"ZUSD": "5.0000"}
    assert post(3, body="nonce=3&asset=ZUSD").json() == {"error": ["EAPI:Invalid key"]}
    assert fake.violations["signature"] == 1


def test_cli_ready_line_and_sigterm():
    assert fake_class("kraken") is FakeKraken
    proc = subprocess.Popen([sys.executable, "-m", "tests.fakes", "kraken", "--auto-accounts",
                             "--latency", "0.001"], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline().strip()
        assert line.startswith("READY http://127.0.0.1:")
        url = line.split()[1]
        assert requests.get(url + "/__fake__/stats", timeout=2).json()["private_calls"] == 0
    finally:
        proc.terminate()
    assert proc.wait(5) == 0
