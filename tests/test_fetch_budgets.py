"""The fetch plane keeps every exchange's real limits, asserted by the fakes' own counters.

The fakes enforce what the exchanges document (tests/fakes/exchange_limits.py) with durations
shortened by ``time_scale``; the service is built with the same ``time_scale`` so that its limits
table describes the same (shortened) exchange. Nothing here waits with sleeps: each test makes
one blocking ``refresh`` and reads the fakes' counters and per-address logs.
"""
from __future__ import annotations

import time

from bot.core.state import Status
from tests.fakes import FakeBinance, FakeKraken
from tests.fetch_support import arrivals, auto_broker, binance_key, kraken_key, service_for, write_config

OPTION_SETS = ({}, {"recvWindow": 5000}, {"adjustForTimeDifference": False})


def test_many_binance_accounts_with_mixed_options_are_paced_within_the_address_weight(tmp_path):
    scale, accounts = 30.0, 400          # a Binance minute lasts 2 s; 8,000+ weight needs two of them
    with FakeBinance(enforce_limits=True, time_scale=scale, auto_accounts=True) as fake:
        users = {f"u{i}": {"binance": auto_broker(fake, binance_key(i), options=OPTION_SETS[i % 3])}
                 for i in range(accounts)}
        with service_for(write_config(tmp_path, users), time_scale=scale) as service:
            states = service.refresh()
            endpoints = service._registry.endpoints()
        assert [s.status for s in states] == [Status.OK] * accounts
        assert len(endpoints) == 3 and len({id(e.budget) for e in endpoints}) == 1   # one budget per host
        assert (fake.throttled, fake.banned, fake.rejected) == (0, 0, 0)
        stats = fake.limit_stats()
        assert stats["by_ip"]["127.0.0.1"]["peak_weight"] <= 6000
        weight = accounts * 20 + 3 * (20 + 80)
        minutes = (arrivals(fake)[-1].time - arrivals(fake)[0].time) * scale / 60
        assert minutes >= weight / 6000 - 1          # paced over the windows, not burst into one


def test_kraken_public_calls_of_several_option_sets_share_the_host_limit(tmp_path):
    scale = 10.0
    with FakeKraken(enforce_limits=True, time_scale=scale, auto_accounts=True) as fake:
        users = {f"u{i}": {"kraken": auto_broker(fake, kraken_key(i), options={"variant": i % 3})} for i in range(9)}
        root = write_config(tmp_path, users, request_timeout_seconds=5.0)   # no retry on a busy machine
        with service_for(root, time_scale=scale) as service:
            states = service.refresh()
        public = [e for e in arrivals(fake) if e.kind == "public"]
        assert [s.status for s in states] == [Status.OK] * 9
        assert len(public) == 9                      # three endpoints: Assets, AssetPairs, Ticker each
        assert fake.rejected == 0 and fake.refused == 0
        gaps = [b.time - a.time for a, b in zip(public, public[1:])]
        assert min(gaps) >= 1.0 / scale


def test_a_key_shared_by_thirty_accounts_stays_within_krakens_call_counter(tmp_path):
    scale = 20.0
    with FakeKraken(enforce_limits=True, time_scale=scale, auto_accounts=True, tier="starter") as fake:
        shared = auto_broker(fake, kraken_key(0))
        users = {f"u{i}": {"kraken": shared} for i in range(30)}
        with service_for(write_config(tmp_path, users, first_read_timeout_seconds=120), time_scale=scale) as service:
            states = service.refresh()
        by_key = fake.limit_stats()["by_key"][kraken_key(0)]
        assert [s.status for s in states] == [Status.OK] * 30
        assert fake.rejected == 0 and by_key["refused"] == 0
        assert 8 <= by_key["peak_counter"] <= 15        # most of the counter used (load permitting), never over it
        assert fake.violations["overlap"] == 0 and fake.violations["nonce"] == 0


def test_a_429_with_retry_after_pauses_the_whole_host(tmp_path):
    """The fake allows a tenth of Binance's weight, so the service (which believes the real
    6,000) meets 429s. One request in flight per host (``max_workers`` 1): none was on the wire
    when a 429 was sent, so any arrival during its Retry-After would be the service's fault."""
    scale, accounts = 30.0, 60
    with FakeBinance(enforce_limits=True, time_scale=scale, auto_accounts=True) as fake:
        fake.fractional_retry_after = True
        fake.limit_rules.weight_limit = 600                 # per (scaled) minute: 1,300 weight need 3
        users = {f"u{i}": {"binance": auto_broker(fake, binance_key(i))} for i in range(accounts)}
        root = write_config(tmp_path, users, max_workers=1, retries=3, request_timeout_seconds=5.0)
        with service_for(root, time_scale=scale) as service:
            states = service.refresh()
            report = service.budget_report()
        assert fake.throttled >= 1 and report["binance"]["throttled"]["http_429"] == fake.throttled
        assert fake.banned == 0 and fake.requests_during_retry_after == 0
        for given in fake.retry_afters():
            assert not [e for e in arrivals(fake) if given.issued < e.time < given.until]
        assert [s.status for s in states] == [Status.OK] * accounts


def ban(fake, seconds: float, ip: str = "127.0.0.1") -> float:
    """Ban ``ip`` at the fake for ``seconds`` (real), as Binance does to a client that ignored a
    Retry-After; returns the ban's end on the fake's clock."""
    with fake.lock:
        now = fake.limits.clock()
        until = fake.limits.ban(ip, now, seconds)
        fake.limits.arm(ip, now, until, 418)
    return until


def test_a_418_ban_stops_every_call_until_its_time(tmp_path):
    with FakeBinance(enforce_limits=True, auto_accounts=True) as fake:
        fake.fractional_retry_after = True
        users = {f"u{i}": {"binance": auto_broker(fake, binance_key(i))} for i in range(20)}
        with service_for(write_config(tmp_path, users), time_scale=1.0) as service:
            until = ban(fake, 1.5)
            states = service.refresh()                 # never read: they wait for the ban, then read
        refused = [e for e in arrivals(fake) if e.status == 418]
        later = [e for e in arrivals(fake) if e.status != 418]
        assert [s.status for s in states] == [Status.OK] * 20
        assert 1 <= len(refused) <= 16                 # only what was already on the wire
        assert max(e.time for e in refused) - min(e.time for e in refused) < 0.5
        assert later and min(e.time for e in later) >= until


def test_accounts_with_values_stay_stale_while_their_host_is_banned(tmp_path):
    with FakeBinance(enforce_limits=True, auto_accounts=True) as fake:
        fake.fractional_retry_after = True
        users = {f"u{i}": {"binance": auto_broker(fake, binance_key(i))} for i in range(5)}
        with service_for(write_config(tmp_path, users), time_scale=1.0) as service:
            first = service.refresh()
            until = ban(fake, 30.0)
            started = time.monotonic()
            states = service.refresh()                 # one 418, then no call: known values go stale
            elapsed = time.monotonic() - started
            report = service.budget_report()
        assert [s.status for s in first] == [Status.OK] * 5
        assert [s.status for s in states] == [Status.STALE] * 5
        assert all(s.value == first[0].value and s.error.startswith("RateLimited: until ") for s in states)
        assert elapsed < 5
        assert report["binance"]["paused_until"] >= until - 1 and report["binance"]["pause_reason"] == "ban_418"
        assert 1 <= fake.banned <= 5 and fake.limit_stats()["totals"]["requests_during_ban"] == fake.banned


def test_source_addresses_get_separate_budgets(tmp_path):
    """Two services bound to 127.0.0.2 and 127.0.0.3 read 250 accounts each at once: 10,000+
    weight in about one (scaled) minute, more than one address may spend, each within its own."""
    scale = 30.0
    with FakeBinance(enforce_limits=True, time_scale=scale, auto_accounts=True) as fake:
        roots = []
        for n, address in enumerate(("127.0.0.2", "127.0.0.3")):
            users = {f"u{n}-{i}": {"binance": auto_broker(fake, binance_key(n * 1000 + i))} for i in range(250)}
            roots.append(write_config(tmp_path / address, users, fetch={"source_address": address}))
        with service_for(roots[0], time_scale=scale) as a, service_for(roots[1], time_scale=scale) as b:
            from concurrent.futures import ThreadPoolExecutor
            with ThreadPoolExecutor(2) as pool:
                results = list(pool.map(lambda s: s.refresh(), (a, b)))
            budgets = [x.budgets()[0] for x in (a._registry, b._registry)]
        by_ip = fake.limit_stats()["by_ip"]
        assert all(s.status is Status.OK for states in results for s in states)
        assert [b.address for b in budgets] == ["127.0.0.2", "127.0.0.3"]
        assert set(by_ip) == {"127.0.0.2", "127.0.0.3"}
        assert all(by_ip[ip]["accepted"] >= 251 and by_ip[ip]["peak_weight"] <= 6000 for ip in by_ip)
        assert fake.throttled == 0 and fake.banned == 0
