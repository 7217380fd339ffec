"""The manager end to end against loopback fake exchanges through ccxt's real code."""
from __future__ import annotations

import logging
import socket
import threading
from decimal import Decimal as D

import ccxt
import pytest

from bot.core.state import Status
from bot.broker_manager import BrokerType
from tests.conftest import FAST_SETTINGS, broker_on, no_spacing
from tests.fakes import FakeKraken, fake_class
from tests.clock import Clock

EXCHANGES = ["kraken", "binance", "okx", "coinbase"]



KRAKEN_LATENCY = 0.01  # the `kraken` fixture's per-request latency in this module


def manager_for(config, managers, environ=None):
    manager = config.manager(environ)
    managers.append(manager)
    return manager


def test_reads_values_and_shares_markets_per_endpoint(config, managers, kraken):
    users = {f"u{i}": kraken.add_account({"BTC": "0.5", "USD": "1000", "DOT": "10"}) for i in range(6)}
    config.settings(**FAST_SETTINGS, rate_limits=no_spacing("kraken"))
    for user_id, creds in users.items():
        config.user(user_id, {"kraken": broker_on(kraken, creds)})
    manager = manager_for(config, managers)
    states = manager.refresh()
    expected = D("0.5") * 50000 + 1000 + 10 * D("6.50") * D("1.10")
    assert [s.value for s in states] == [expected] * 6
    assert all(s.status is Status.OK for s in states)
    public = [c.path for c in kraken.calls if c.kind == "public"]
    assert sorted(public) == ["/0/public/AssetPairs", "/0/public/Assets", "/0/public/Ticker"]
    assert len(kraken.private_calls()) == 6
    endpoint, = manager.service._registry.endpoints()
    assert endpoint.instances_created <= 1 + manager.settings.max_workers
    assert kraken.violations == {k: 0 for k in kraken.violations}


def test_cache_serves_within_ttl_and_force_refresh_reads_again(config, managers, kraken):
    creds = kraken.add_account({"USD": "10"})
    config.settings(**FAST_SETTINGS, rate_limits=no_spacing("kraken")).user("alice", {"kraken": broker_on(kraken, creds)})
    manager = manager_for(config, managers)
    assert manager.get_user_balance("alice") == D("10")
    kraken.set_balance(creds["api_key"], "USD", "25")
    assert manager.get_user_balance("alice") == D("10")          # cached
    assert manager.get_user_balance("alice", BrokerType.KRAKEN) == D("10")
    manager.refresh(force=False)                                   # fresh: nothing to read
    assert len(kraken.private_calls()) == 1
    manager.refresh(force=True)
    assert manager.get_user_balance("alice", "kraken") == D("25")
    assert len(kraken.private_calls()) == 2


def test_single_flight_under_16_readers(config, managers):
    with FakeKraken(latency=0.3) as fake:
        creds = fake.add_account({"USD": "42"})
        config.settings(**FAST_SETTINGS, rate_limits=no_spacing("kraken")).user("alice", {"kraken": broker_on(fake, creds)})
        manager = manager_for(config, managers)
        barrier = threading.Barrier(16)
        results = []

        def reader():
            barrier.wait()
            results.append(manager.get_user_balance("alice"))

        threads = [threading.Thread(target=reader) for _ in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert results == [D("42")] * 16
        assert len(fake.private_calls()) == 1


def test_keys_in_parallel_each_key_sequential_and_spaced(config, managers):
    with FakeKraken(latency=0.2, min_interval=1.1) as fake:
        keys = [fake.add_account({"USD": str(i)}) for i in range(8)]
        # Kraken's default spacing (1.1 s) applies; public calls unspaced to keep the test short.
        config.settings(**FAST_SETTINGS, rate_limits={"kraken": {"public_min_interval_seconds": 0}})
        for i, creds in enumerate(keys):
            config.user(f"u{i}", {"kraken": broker_on(fake, creds)})
        manager = manager_for(config, managers)
        manager.refresh()
        first = fake.private_calls()
        assert len(first) == 8
        assert max(c.start for c in first) - min(c.start for c in first) < 0.2  # all keys at once
        manager.refresh(force=True)
        manager.refresh(force=True)
        assert fake.violations == {k: 0 for k in fake.violations}
        for creds in keys:
            calls = sorted(fake.private_calls(creds["api_key"]), key=lambda c: c.start)
            assert len(calls) == 3
            assert all(b.start - a.end >= 1.1 for a, b in zip(calls, calls[1:]))


def test_nonces_stay_increasing_across_many_back_to_back_reads(config, managers, kraken):
    creds = kraken.add_account({"USD": "1"})
    config.settings(**FAST_SETTINGS, rate_limits=no_spacing("kraken"))
    config.user("alice", {"kraken": broker_on(kraken, creds)}).user("bob", {"k2": broker_on(kraken, creds)})
    manager = manager_for(config, managers)  # two accounts, one key: they share one gate
    for _ in range(10):
        manager.refresh(force=True)
    assert len(kraken.private_calls()) == 20
    assert kraken.violations == {k: 0 for k in kraken.violations}


FAULT_EXPECTATIONS = {
    # fault: (ccxt error class the account reports must be (a subclass of), retried?)
    "timeout": ("RequestTimeout", True),
    "http_500": ("ExchangeNotAvailable", True),
    "http_502": ("ExchangeNotAvailable", True),
    "http_429": (("DDoSProtection", "RateLimitExceeded"), True),
    "malformed_json": (None, False),
    "invalid_key": ("AuthenticationError", False),
    "invalid_nonce": ("InvalidNonce", True),
}


def error_class(state):
    """The state's error class (a field); the human text still starts with it."""
    assert state.error_class and state.error.startswith(state.error_class + ":"), (state.error_class, state.error)
    return state.error_class


# Coinbase answers a stale timestamp with its authentication error body, which ccxt maps to
# AuthenticationError (ccxt issues #5979, #8587): reported as such and not retried.
EXCHANGE_EXCEPTIONS = {("coinbase", "invalid_nonce"): ("AuthenticationError", False)}


def assert_reported_as(state, expected):
    name = error_class(state)
    if expected is None:
        assert name == "MalformedResponse", state.error
    else:
        options = expected if isinstance(expected, tuple) else (expected,)
        assert any(issubclass(getattr(ccxt, name), getattr(ccxt, e)) for e in options), state.error


@pytest.mark.parametrize("exchange", EXCHANGES)
@pytest.mark.parametrize("fault", list(FAULT_EXPECTATIONS))
def test_fault_matrix(config, managers, exchange, fault):
    expected, retried = EXCHANGE_EXCEPTIONS.get((exchange, fault), FAULT_EXPECTATIONS[fault])
    with fake_class(exchange)() as fake:
        fake.timeout_delay = 1.5  # beyond the 1 s client timeout
        hit, other, fresh = (fake.add_account(b) for b in ({"BTC": "1"}, {"ETH": "2"}, {"BTC": "2"}))
        config.settings(**FAST_SETTINGS, rate_limits=no_spacing(exchange))
        config.user("hit", {exchange: broker_on(fake, hit)}).user("other", {exchange: broker_on(fake, other)})
        config.user("fresh", {exchange: broker_on(fake, fresh)}, enabled=True)
        manager = manager_for(config, managers)
        manager.get_user_balance("hit"), manager.get_user_balance("other")
        good = manager.get_user_balance("hit")
        assert good == D(50000)
        fake.inject(fault, api_key=hit["api_key"], count=10)
        fake.inject(fault, api_key=fresh["api_key"], count=10)
        calls_before = len(fake.private_calls(hit["api_key"]))
        states = {s.owner: s for s in manager.refresh(force=True)}

        hit_state, fresh_state, other_state = states["hit"], states["fresh"], states["other"]
        assert hit_state.status is Status.STALE and hit_state.value == good and hit_state.fetched_at is not None
        assert_reported_as(hit_state, expected)
        assert fresh_state.status is Status.ERROR and fresh_state.value is None
        assert_reported_as(fresh_state, expected)
        assert other_state.status is Status.OK and other_state.value == D(2) * 3000
        if fault != "timeout":  # a timed-out request may still be on the wire when counted
            made = len(fake.private_calls(hit["api_key"])) - calls_before
            assert made == (1 + FAST_SETTINGS["retries"] if retried else 1)
        assert fake.violations == {k: 0 for k in fake.violations}


def test_connection_refused_marks_only_that_account(config, managers, kraken):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    good = kraken.add_account({"USD": "7"})
    config.settings(**FAST_SETTINGS, rate_limits=no_spacing("kraken"))
    config.user("alice", {"kraken": broker_on(kraken, good)})
    config.user("bob", {"kraken": {"api_key": "abcd", "api_secret": "c2VjcmV0", "api_url": f"http://127.0.0.1:{closed_port}"}})
    manager = manager_for(config, managers)
    states = {s.owner: s for s in manager.refresh()}
    assert states["alice"].status is Status.OK and states["alice"].value == D(7)
    assert states["bob"].status is Status.ERROR and states["bob"].value is None
    assert issubclass(getattr(ccxt, error_class(states["bob"])), ccxt.NetworkError)
    assert manager.get_user_balance("bob") is None
    assert manager.get_user_balance_summary()["users"][0]["user_id"] == "alice"


def test_not_configured_account_does_not_hide_the_others(config, managers, kraken):
    creds = kraken.add_account({"USD": "3"})
    config.settings(**FAST_SETTINGS, rate_limits=no_spacing("kraken"))
    config.user("alice", {"kraken": broker_on(kraken, creds), "binance": {"api_key_env": "MISSING_KEY", "api_secret_env": "MISSING_SECRET"}})
    manager = manager_for(config, managers)
    states = {s.broker: s for s in manager.refresh()}
    assert states["binance"].status is Status.NOT_CONFIGURED and states["binance"].value is None
    assert "MISSING_KEY" in states["binance"].error
    assert manager.get_user_balance("alice") == D(3)
    assert manager.get_user_balance("alice", "binance") is None
    with pytest.raises(KeyError, match="unknown user"):
        manager.get_user_balance("nobody")
    with pytest.raises(KeyError, match="no broker 'okx'"):
        manager.get_user_balance("alice", BrokerType.OKX)


def test_errors_and_logs_carry_no_secrets(config, managers, kraken, caplog):
    creds = kraken.add_account({"USD": "3"})
    config.settings(**FAST_SETTINGS, rate_limits=no_spacing("kraken"))
    config.user("alice", {"kraken": broker_on(kraken, creds)})
    manager = manager_for(config, managers)
    kraken.inject("invalid_key", api_key=creds["api_key"], count=5)
    with caplog.at_level(logging.DEBUG):
        state, = manager.refresh()
        manager.log_all_balances()
        report = manager.get_status_report()
    assert state.status is Status.ERROR
    for text in (state.error, caplog.text, report, repr(state)):
        assert creds["api_key"] not in text and creds["api_secret"] not in text




def test_expired_entry_is_served_at_once_while_one_read_refreshes_it(config, managers, kraken):
    from bot.multi_account_broker_manager import MultiAccountBrokerManager

    creds = kraken.add_account({"USD": "10"})
    config.settings(**FAST_SETTINGS, rate_limits=no_spacing("kraken")).user("alice", {"kraken": broker_on(kraken, creds)})
    clock = Clock()
    manager = MultiAccountBrokerManager(config.load(), clock=clock)
    managers.append(manager)
    assert manager.get_user_balance("alice") == D(10)
    clock.now += 121                                  # past the 120 s TTL
    kraken.timeout_delay = 1.5                        # the refresh will hang, then time out
    kraken.inject("timeout", api_key=creds["api_key"], count=10)
    assert manager.get_user_balance("alice") == D(10)  # answered from the last state ...
    assert "alice:kraken" in manager.service._cache._inflight   # ... while its read is still in flight
    assert manager.get_user_balance("alice") == D(10)
    state, = manager.refresh(force=False)              # joins the read in flight, no second one
    assert state.status is Status.STALE and state.value == D(10) and state.error.startswith("RequestTimeout")


def test_public_calls_respect_the_exchange_public_limit(config, managers):
    with FakeKraken(public_min_interval=1.0) as fake:   # Kraken's ccxt rateLimit is 1000 ms
        creds = [fake.add_account({"USD": "1"}) for _ in range(3)]
        config.settings(**FAST_SETTINGS)
        for i, c in enumerate(creds):
            config.user(f"u{i}", {"kraken": broker_on(fake, c)})
        manager = manager_for(config, managers)
        assert all(s.status is Status.OK for s in manager.refresh())
        public = sorted((c for c in fake.calls if c.kind == "public"), key=lambda c: c.start)
        assert len(public) == 3
        assert fake.violations["public_spacing"] == 0


def test_zero_balances_unpriced_assets_and_unknown_are_told_apart(config, managers, kraken):
    empty = kraken.add_account({"USD": "0"})
    odd = kraken.add_account({"USD": "5", "FOO": "3"})
    config.settings(**FAST_SETTINGS, rate_limits=no_spacing("kraken"))
    config.user("empty", {"kraken": broker_on(kraken, empty)}).user("odd", {"kraken": broker_on(kraken, odd)})
    config.user("unknown", {"kraken": {"api_key_env": "UNSET_KEY", "api_secret_env": "UNSET_SECRET"}})
    manager = manager_for(config, managers)
    states = {s.owner: s for s in manager.refresh()}
    assert states["empty"].status is Status.OK and states["empty"].value == 0
    assert states["odd"].value == D(5) and states["odd"].unpriced == ("FOO",)
    assert states["odd"].holdings["FOO"].amount == D(3) and states["odd"].holdings["FOO"].value is None
    assert states["unknown"].value is None
    assert manager.get_user_balance("empty") == 0 and manager.get_user_balance("unknown") is None


def test_importing_does_no_io_and_the_default_manager_reads_the_default_config(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    code = ("import bot.multi_account_broker_manager as m; import sys; "
            "print('imported'); sys.stdout.flush(); "
            "print(m.multi_account_broker_manager.get_user_balance('alice'))")
    missing = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True,
                             env={"BALANCES_CONFIG": str(tmp_path / "absent"), "PATH": "/usr/bin:/bin"})
    assert missing.stdout.startswith("imported") and "configuration directory not found" in missing.stderr
    import shutil
    shutil.copytree(root / "config", tmp_path / "example", ignore=shutil.ignore_patterns("*.sqlite3*"))
    example = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True,
                             env={"BALANCES_CONFIG": str(tmp_path / "example"), "PATH": "/usr/bin:/bin"})
    assert example.stdout.split() == ["imported", "1000.00"], example.stderr
