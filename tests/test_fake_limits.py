"""The fakes' exchange rate limits (tests/fakes/limits.py, exchange_limits.py) and transport
faults (tests/fakes/transport.py), proved with real HTTP requests from several loopback source
addresses (127.0.0.2, 127.0.0.3 ... all reach a server on 127.0.0.1 on Linux) and through ccxt.

Time is a ``ManualClock`` moved by hand (no sleeps); one test runs on the real clock with a
large ``time_scale`` to show that scaled windows pass in real time.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import ccxt
import pytest
import requests

from tests.fakes import FakeBinance, FakeCoinbase, FakeKraken, FakeOKX
from tests.fakes.ccxt_clients import MsNonce, load_public, private_client, reset_fake, wait_for
from tests.fakes.limits import DecayingCounter, ManualClock, RateWindow, WeightWindow

ROOT = Path(__file__).resolve().parents[1]
A, B, C = "127.0.0.2", "127.0.0.3", "127.0.0.4"
BAN_MSG = "Way too much request weight used; IP banned until "
WEIGHT_MSG = ("Too much request weight used; current limit is 6000 request weight per 1 MINUTE. "
              "Please use WebSocket Streams for live updates to avoid polling the API.")


def call(fake, path, src="127.0.0.1", method="GET", body=None, headers=None):
    """(status, headers, parsed JSON body) of one request sent from ``src``."""
    conn = http.client.HTTPConnection(fake.host, fake.port, timeout=5, source_address=(src, 0))
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, resp.headers, json.loads(data) if data else None
    finally:
        conn.close()


def aligned_clock() -> ManualClock:
    """A clock at the start of a Binance minute at every scale used here (a small value: exact)."""
    return ManualClock(600_000.0)


def limited(cls, scale=10.0, **kwargs):
    clock = aligned_clock()
    return cls(enforce_limits=True, time_scale=scale, clock=clock, **kwargs), clock


# ---------------------------------------------------------------------------------- primitives
def test_budget_primitives():
    window = WeightWindow(6000, 60.0)
    assert (window.add(20, 5.0), window.add(1, 65.0), window.current(5.0)) == (20, 1, 1)
    assert window.resets_in(65.0) == 55.0 and window.peak == 20     # never rolls back
    rate = RateWindow(2, 1.0)
    assert [rate.try_acquire(x) for x in (0.0, 0.5, 0.9, 1.0)] == [True, True, False, True]
    assert rate.retry_in(1.0) == 0.5
    counter = DecayingCounter(15, 0.5)
    assert all(counter.add(1, 0.0) for _ in range(15)) and not counter.add(1, 0.0)
    assert counter.level_at(2.0) == 15.0 and counter.add(1, 4.0)     # 16 - 2 + 1 = 15


# ---------------------------------------------------------------------------------- Binance
def test_binance_weights_and_header_per_address_even_when_not_enforced():
    with FakeBinance(clock=aligned_clock()) as fake:
        assert fake.enforce_limits is False
        steps = [("/api/v3/exchangeInfo", 20), ("/api/v3/ticker/24hr", 100),
                 ("/api/v3/ticker/24hr?symbol=BTCUSDT", 102),
                 ('/api/v3/ticker/24hr?symbols=["BTCUSDT","ETHBTC"]', 104),
                 ("/api/v3/ticker/price", 108), ("/api/v3/ticker/price?symbol=BTCUSDT", 110),
                 ("/api/v3/ping", 111), ("/api/v3/time", 112)]
        for path, used in steps:
            status, headers, _ = call(fake, path, A)
            assert status == 200
            assert headers["X-MBX-USED-WEIGHT-1M"] == headers["X-MBX-USED-WEIGHT"] == str(used)
        assert call(fake, "/api/v3/exchangeInfo", B)[1]["X-MBX-USED-WEIGHT-1M"] == "20"
        for _ in range(80):                        # 6,400 more: over 6,000, nothing refused
            assert call(fake, "/api/v3/ticker/24hr", A)[0] == 200
        stats = fake.limit_stats()
        assert stats["by_ip"][A]["peak_weight"] == 112 + 6400
        assert stats["totals"]["refused"] == 0 and fake.throttled == fake.banned == 0
        assert fake.ip_log() == []                  # logged only when enforced


def test_binance_429_then_418_bans_doubling_and_other_addresses_unaffected():
    fake, clock = limited(FakeBinance, scale=10.0)      # a minute lasts 6 real seconds
    with fake:
        for _ in range(75):                         # 75 x 80 = 6,000: exactly the limit
            assert call(fake, "/api/v3/ticker/24hr", A)[0] == 200
        clock.advance(0.5)
        status, headers, body = call(fake, "/api/v3/ping", A)
        assert (status, body) == (429, {"code": -1003, "msg": WEIGHT_MSG})
        assert headers["Retry-After"] == "6"        # ceil(5.5 real s to the window's end)
        assert headers["X-MBX-USED-WEIGHT-1M"] == "6001"
        assert call(fake, "/api/v3/ping", B)[1]["X-MBX-USED-WEIGHT-1M"] == "1"   # own budget
        clock.advance(1)                            # A does not wait: banned 2 min / 10
        status, headers, body = call(fake, "/api/v3/ping", A)
        assert status == 418 and headers["Retry-After"] == "12"
        assert body["code"] == -1003 and body["msg"].startswith(BAN_MSG)
        until_ms = int(body["msg"][len(BAN_MSG):].split(".")[0])
        assert abs(until_ms - (time.time() + 12) * 1000) < 2000
        clock.advance(1)
        status, headers, _ = call(fake, "/api/v3/ping", A)      # during the ban: same 418
        assert status == 418 and headers["Retry-After"] == "11"
        assert call(fake, "/api/v3/account", C)[0] == 401       # C is not banned
        totals = fake.limit_stats()["totals"]
        assert totals == {"accepted": 77, "refused": 3, "throttled": 1, "banned": 2,
                          "rejected": 0, "requests_during_retry_after": 2,
                          "requests_during_ban": 1, "bans": 1}
        assert fake.requests_during_retry_after == 2
        clock.advance(11)                           # ban over, new window
        assert call(fake, "/api/v3/ping", A)[1]["X-MBX-USED-WEIGHT-1M"] == "1"
        fake.limit_rules.weight_limit = 1           # the next ban lasts twice as long
        assert call(fake, "/api/v3/ping", A)[0] == 429
        status, headers, _ = call(fake, "/api/v3/ping", A)
        assert status == 418 and headers["Retry-After"] == "24"
        ips = fake.limit_stats()["by_ip"]
        assert ips[A]["ban_count"] == 2 and ips[B]["refused"] == ips[C]["refused"] == 0
        assert [(r.ip, r.status) for r in fake.retry_afters()] == \
            [(A, 429), (A, 418), (A, 429), (A, 418)]
        with fake.lock:                             # capped at 3 days
            fake.limits.address(A).ban_count = 30
        clock.advance(25)
        assert [call(fake, "/api/v3/ping", A)[0] for _ in range(3)] == [200, 429, 418]
        assert fake.retry_afters(A)[-1].until - clock() == pytest.approx(3 * 86400 / 10)


def test_binance_waiting_out_retry_after_is_no_violation():
    fake, clock = limited(FakeBinance, scale=10.0)
    with fake:
        fake.limit_rules.weight_limit = 40
        assert call(fake, "/api/v3/exchangeInfo", A)[0] == 200
        assert call(fake, "/api/v3/exchangeInfo", A)[0] == 200
        status, headers, _ = call(fake, "/api/v3/exchangeInfo", A)
        assert status == 429
        clock.advance(float(headers["Retry-After"]))
        assert call(fake, "/api/v3/exchangeInfo", A)[0] == 200
        assert fake.requests_during_retry_after == 0 and fake.banned == 0
        log = fake.ip_log(A)
        assert [(e.status, e.refused_by) for e in log] == \
            [(200, None), (200, None), (429, "ip_weight"), (200, None)]
        assert fake.retry_afters(A)[0].until <= log[-1].time


def test_binance_limits_through_ccxt_and_injected_429_is_enforced_too():
    fake, clock = limited(FakeBinance, scale=10.0)
    with fake:
        fake.limit_rules.weight_limit = 80      # load_markets 20 + 3 x fetch_balance 20
        public = load_public(fake)
        creds, ex = private_client(fake, public, {"BTC": "0.5"})
        for _ in range(3):
            assert ex.fetch_balance()["total"]["BTC"] == 0.5
        with pytest.raises(ccxt.DDoSProtection, match="429"):
            ex.fetch_balance()
        with pytest.raises(ccxt.DDoSProtection, match="418"):
            ex.fetch_balance()
        assert len(fake.private_calls(creds["api_key"])) == 3   # refused at the address gate
        clock.advance(60)
        fake.reset_limits()
        fake.inject("http_429", api_key=creds["api_key"])       # Retry-After: 1
        with pytest.raises(ccxt.DDoSProtection, match="429"):
            ex.fetch_balance()
        with pytest.raises(ccxt.DDoSProtection, match="418"):   # did not wait 1 s: banned
            ex.fetch_balance()
        assert fake.requests_during_retry_after == 1 and fake.banned == 1


def test_binance_time_scale_on_the_real_clock():
    """time_scale=600: a minute lasts 0.1 s; a fractional Retry-After is honoured in real time."""
    with FakeBinance(enforce_limits=True, time_scale=600) as fake:
        fake.fractional_retry_after = True
        fake.limit_rules.weight_limit = 20
        deadline = time.monotonic() + 5
        while True:                            # the first 429 of some window
            status, headers, _ = call(fake, "/api/v3/exchangeInfo", A)
            if status == 429:
                break
            assert time.monotonic() < deadline
        wait = float(headers["Retry-After"])
        assert 0 < wait <= 0.1
        threading.Event().wait(wait)           # waiting out a server deadline, not syncing
        assert call(fake, "/api/v3/exchangeInfo", A)[0] == 200
        assert fake.banned == 0 and fake.requests_during_retry_after == 0


# ---------------------------------------------------------------------------------- Kraken
def kraken_post(fake, creds, nonce, src="127.0.0.1", path="/0/private/Balance"):
    body = f"nonce={nonce}"
    secret = base64.b64decode(creds["api_secret"])
    mac = hmac.new(secret, path.encode() + hashlib.sha256(f"{nonce}{body}".encode()).digest(),
                   hashlib.sha512)
    return call(fake, path, src, "POST", body,
                {"API-Key": creds["api_key"], "API-Sign": base64.b64encode(mac.digest()).decode(),
                 "Content-Type": "application/x-www-form-urlencoded"})[2]


def test_kraken_public_one_call_per_second_per_address():
    fake, clock = limited(FakeKraken, scale=10.0)
    with fake:
        assert call(fake, "/0/public/Time", A)[2]["error"] == []
        status, _, body = call(fake, "/0/public/Assets", A)
        assert (status, body) == (200, {"error": ["EGeneral:Too many requests"]})
        assert call(fake, "/0/public/Time", B)[2]["error"] == []
        clock.advance(0.099)                     # 0.99 exchange seconds
        assert call(fake, "/0/public/Time", A)[2]["error"] == ["EGeneral:Too many requests"]
        clock.advance(0.002)
        assert call(fake, "/0/public/Time", A)[2]["error"] == []
        assert (fake.rejected, fake.throttled) == (2, 0)
        assert fake.limit_stats()["by_reason"] == {"ip_rate": 2}
        assert len([c for c in fake.calls if c.kind == "public"]) == 3


@pytest.mark.parametrize("tier, maximum, decay", [("starter", 15, 0.33),
                                                  ("intermediate", 20, 0.5), ("pro", 20, 1.0)])
def test_kraken_private_counter_by_tier(tier, maximum, decay):
    fake, clock = limited(FakeKraken, scale=1.0, tier=tier)
    with fake:
        creds, other = fake.add_account({"USD": "1"}), fake.add_account({"USD": "2"})
        nonce = iter(range(1, 1000))
        for _ in range(maximum):
            assert kraken_post(fake, creds, next(nonce))["result"] == {"ZUSD": "1.0000"}
        assert kraken_post(fake, creds, next(nonce)) == {"error": ["EAPI:Rate limit exceeded"]}
        assert kraken_post(fake, other, 1)["error"] == []          # per key
        clock.advance(2.5 / decay)        # counter max+1 - 2.5: one more call fits, two do not
        assert kraken_post(fake, creds, next(nonce))["error"] == []
        assert kraken_post(fake, creds, next(nonce))["error"] == ["EAPI:Rate limit exceeded"]
        row = fake.limit_stats()["by_key"][creds["api_key"]]
        assert row["refused"] == 2 and row["max_counter"] == maximum
        assert row["peak_counter"] == pytest.approx(maximum + 1)
        assert len(fake.private_calls(creds["api_key"])) == maximum + 3   # in calls


def test_kraken_tier_per_account_time_scale_and_ccxt():
    fake, clock = limited(FakeKraken, scale=10.0)
    fake.enforce_limits = False                # load_markets = Assets + AssetPairs, 0 s apart
    with fake:
        public = load_public(fake)
        fake.enforce_limits = True
        pro = fake.add_account({"USD": "1"}, tier="pro")
        for _ in range(20):
            kraken_post(fake, pro, time.time_ns())
        assert kraken_post(fake, pro, time.time_ns())["error"] == ["EAPI:Rate limit exceeded"]
        clock.advance(0.25)               # 2.5 exchange seconds at 1/s: 21 -> 18.5, +1 fits
        assert kraken_post(fake, pro, time.time_ns())["error"] == []
        _creds, ex = private_client(fake, public, {"BTC": "1"}, nonce=MsNonce())   # starter
        for _ in range(15):
            ex.fetch_balance()
        with pytest.raises(ccxt.DDoSProtection, match="EAPI:Rate limit exceeded"):
            ex.fetch_balance()
        with pytest.raises(ValueError):
            fake.tier = "gold"


# ---------------------------------------------------------------------------------- OKX
def test_okx_public_per_address_and_endpoint():
    fake, clock = limited(FakeOKX, scale=10.0)
    with fake:
        path = "/api/v5/market/tickers?instType=SPOT"
        for _ in range(20):
            assert call(fake, path, A)[0] == 200
        status, headers, body = call(fake, path, A)
        assert (status, body) == (429, {"code": "50011", "msg": "Too Many Requests", "data": []})
        assert "Retry-After" not in headers
        assert call(fake, "/api/v5/public/instruments?instType=SPOT", A)[0] == 200
        assert call(fake, path, B)[0] == 200
        clock.advance(0.21)                                      # 2.1 exchange seconds
        assert call(fake, path, A)[0] == 200
        assert fake.throttled == 1 and fake.limit_stats()["by_ip"][A]["throttled"] == 1


def test_okx_balance_ten_per_two_seconds_per_key_through_ccxt():
    fake, clock = limited(FakeOKX, scale=10.0)
    with fake:
        public = load_public(fake)
        _c, ex = private_client(fake, public, {"BTC": "1"})
        for _ in range(10):
            ex.fetch_balance()
        with pytest.raises(ccxt.RateLimitExceeded, match="50011"):
            ex.fetch_balance()
        private_client(fake, public, {"BTC": "2"})[1].fetch_balance()   # another key
        clock.advance(0.21)
        ex.fetch_balance()
        assert fake.limit_stats()["by_reason"] == {"key_rate": 1}


# ---------------------------------------------------------------------------------- Coinbase
def test_coinbase_public_ten_per_second_per_address_and_private_thirty_per_key():
    fake, clock = limited(FakeCoinbase, scale=1.0)
    with fake:
        for _ in range(10):
            assert call(fake, "/api/v3/brokerage/time", A)[0] == 200
        status, _, body = call(fake, "/v2/time", A)
        assert (status, body) == (429, {"errors": [{"id": "rate_limit_exceeded",
                                                    "message": "Too many requests"}]})
        assert call(fake, "/api/v3/brokerage/time", B)[0] == 200
        clock.advance(1)
        public = load_public(fake)          # 5 public calls from 127.0.0.1
        _c, ex = private_client(fake, public, {"BTC": "1"})
        for _ in range(30):
            ex.fetch_balance()
        with pytest.raises(ccxt.RateLimitExceeded, match="rate_limit_exceeded"):
            ex.fetch_balance()
        clock.advance(1)
        ex.fetch_balance()
        assert fake.limit_stats()["by_reason"] == {"ip_rate": 1, "key_rate": 1}


def test_limits_are_off_by_default_and_reset_restores_defaults():
    with FakeKraken() as fake:
        for _ in range(5):
            assert call(fake, "/0/public/Time", A)[2]["error"] == []
        fake.enforce_limits, fake.time_scale = True, 7
        fake.limit_rules.public_limit = (5, 1.0)
        reset_fake(fake)
        assert (fake.enforce_limits, fake.time_scale, fake.tier) == (False, 1.0, "starter")
        assert fake.limit_rules.public_limit == (1, 1.0) and fake.limit_stats()["by_ip"] == {}


# ---------------------------------------------------------------------------------- transport
def raw_get(fake, path, timeout):
    sock = socket.create_connection((fake.host, fake.port), timeout=timeout)
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    return sock


def test_trickle_sends_a_byte_at_a_time_until_the_client_gives_up():
    with FakeKraken() as fake:
        fake.trickle_interval = 0.02
        fake.inject_public("trickle")
        sock = raw_get(fake, "/0/public/Time", timeout=1)
        start, got = time.monotonic(), b""
        while time.monotonic() - start < 0.3:      # a client's total deadline of 0.3 s
            got += sock.recv(4096)                 # every read succeeds: per-read timeouts fail
        sock.close()
        wait_for(lambda: fake.transport_events)
        event = fake.transport_events[0]
        assert event.outcome == "client_closed" and event.end - event.start < 1.0
        assert 5 <= event.bytes_sent < 30 and got.startswith(b"HTTP/1.1 200 OK")
        fake.trickle_interval = 0.001
        fake.inject("trickle")                     # private: the normal answer, slowly
        creds = fake.add_account({"USD": "5"})
        assert kraken_post(fake, creds, 1) == {"error": [], "result": {"ZUSD": "5.0000"}}
        wait_for(lambda: len(fake.transport_events) == 2)
        assert fake.transport_events[1].outcome == "complete"


def test_hang_answers_nothing_until_the_client_closes_or_the_fake_stops():
    fake = FakeOKX().start()
    fake.inject_public("hang", count=2)
    sock = raw_get(fake, "/api/v5/public/time", timeout=0.2)
    with pytest.raises(socket.timeout):
        sock.recv(1)
    sock.close()
    wait_for(lambda: fake.transport_events)
    assert fake.transport_events[0].outcome == "client_closed"
    errors = []

    def ask():
        try:
            requests.get(fake.url + "/api/v5/public/time", timeout=10)
        except requests.ConnectionError as exc:   # closed unanswered
            errors.append(exc)

    thread = threading.Thread(target=ask)
    thread.start()
    wait_for(lambda: fake.stats()["public_calls"] == 2)
    fake.stop()
    thread.join(5)
    assert not thread.is_alive() and len(errors) == 1
    assert fake.transport_events[1].outcome == "stopped"


def test_huge_body_is_streamed_with_its_declared_size():
    with FakeBinance() as fake:
        fake.huge_body_size = 200_000
        fake.inject_public("huge_body")
        resp = requests.get(fake.url + "/api/v3/ping", timeout=5)
        assert len(resp.content) == 200_000 and set(resp.json()["pad"]) == {"x"}
        fake.huge_body_size = 20 * 1024 * 1024
        fake.inject_public("huge_body")
        conn = http.client.HTTPConnection(fake.host, fake.port, timeout=5)
        conn.request("GET", "/api/v3/ping")
        r = conn.getresponse()
        assert int(r.headers["Content-Length"]) == 20 * 1024 * 1024
        r.read(1024 * 1024)                        # a 1 MB body cap, then hang up
        r.close()
        conn.close()
        wait_for(lambda: len(fake.transport_events) == 2, timeout=5)
        first, second = fake.transport_events
        assert first.outcome == "complete" and first.bytes_sent == 200_000
        assert second.outcome == "client_closed" and second.bytes_sent < 20 * 1024 * 1024


# ---------------------------------------------------------------------------------- HTTP/CLI
def test_control_endpoints_and_cli_flags():
    proc = subprocess.Popen([sys.executable, "-m", "tests.fakes", "binance", "--enforce-limits",
                             "--time-scale", "10"], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        url = proc.stdout.readline().split()[1]
        limits = requests.get(url + "/__fake__/limits", timeout=2).json()
        assert (limits["enforce_limits"], limits["time_scale"]) == (True, 10.0)
        assert requests.post(url + "/__fake__/inject?fault=http_500&public=1",
                             timeout=2).status_code == 200
        assert requests.get(url + "/api/v3/ping", timeout=2).status_code == 500
        assert requests.post(url + "/__fake__/inject?fault=nope", timeout=2).status_code == 400
        totals = requests.get(url + "/__fake__/limits", timeout=2).json()["totals"]
        assert totals["accepted"] == 1
        assert requests.post(url + "/__fake__/reset-limits", timeout=2).json() == {"ok": True}
        assert requests.get(url + "/__fake__/limits", timeout=2).json()["by_ip"] == {}
    finally:
        proc.terminate()
    assert proc.wait(5) == 0
