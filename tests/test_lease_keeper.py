"""`LeaseKeeper`: one reader per API key across processes, on a real SQLite file and PostgreSQL.

Each keeper stands for one process (its own identity and store connection pool); leases are
short here (3 s, renewed every second) so that expiry and takeover take seconds, not the product's
30 s (the real-process takeover test with the real lease is in test_shared_processes.py). The
exchange registry is the real one, so floors go through real `KeyLane`s; the last test reads
through real `BalanceService`s against the fake Kraken enforcing its per-key call counter.
"""
from __future__ import annotations

import asyncio
import threading
import time

import pytest

from bot.balances.leases import LeaseKeeper, keys_of
from bot.balances.service import BalanceService
from bot.config import load_config
from bot.core.state import Status
from bot.exchanges.clients import ExchangeRegistry
from bot.store import BalanceStore
from bot.store.leases import CLOSER, KEY_PREFIX
from bot.store.truth import TruthStore
from tests.conftest import FAST_SETTINGS, ConfigBuilder, broker_on
from tests.fakes import FakeKraken

FAST = {"lease_seconds": 3.0, "renew_seconds": 1.0}


class Process:
    """One keeper on its own store, with a real registry for the configuration's kraken account."""

    def __init__(self, database_url, config, name, role, closer="never"):
        self.store = BalanceStore(database_url)
        self.config = config
        self.account = config.accounts()[0]
        self.fingerprint = self.account.broker.credentials.api_key.fingerprint()
        self.registry = ExchangeRegistry(config.settings)
        self.keeper = LeaseKeeper(TruthStore(self.store), f"test:{name}", role,
                                  {self.account.account_id: self.fingerprint}, closer=closer, **FAST)
        self.keeper.attach(self.registry)

    def gate(self):
        return self.registry.resolve(self.account)[1]

    def close(self):
        self.keeper.stop()
        asyncio.run(self.registry.aclose())
        self.store.close()


@pytest.fixture
def kraken_config(config, kraken):
    creds = kraken.add_account({"USD": "100"})
    config.settings()
    config.user("alice", {"kraken": broker_on(kraken, creds)})
    return load_config(config.root, environ={})


@pytest.fixture
def processes(database_url, kraken_config):
    made = []

    def make(name, role, closer="never"):
        made.append(Process(database_url, kraken_config, name, role, closer))
        return made[-1]
    yield make
    for process in reversed(made):
        process.close()


def wait_until(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"{what} not within {timeout} s"
        time.sleep(0.02)  # polling a deadline, not synchronising


ALICE = "alice:kraken"


def test_one_process_reads_a_key_the_other_follows(processes):
    first = processes("a", "auto").keeper.start()
    second = processes("b", "auto").keeper.start()
    assert first.holds(ALICE) and first.may_read(ALICE)
    assert not second.holds(ALICE) and not second.may_read(ALICE) and second.live_elsewhere(ALICE)
    first.read_done(ALICE)
    assert first.readers() == {"keys": 1, "here": 1, "elsewhere": 0, "unheld": 0}
    assert second.readers() == {"keys": 1, "here": 0, "elsewhere": 1, "unheld": 0}
    assert second.holds("paper:account")  # no key, no lease


def test_a_stopped_reader_hands_its_key_on_with_its_nonce_and_spacing(processes):
    first = processes("a", "auto")
    first.keeper.start()
    gate = first.gate()
    gate.next_nonce(1_900_000_000_000)  # the key's last nonce in this process
    gate.last_call_at = time.time()
    first.keeper.stop()                 # releases with the floors
    second = processes("b", "auto")
    second.keeper.start()
    assert second.keeper.holds(ALICE)
    taken = second.gate()
    assert taken.next_nonce(5) == 1_900_000_000_001  # continues above the previous reader's nonce
    assert taken.not_before >= gate.last_call_at + taken.interval() - 1e-5  # stored to the microsecond


def test_a_stopped_reader_hands_its_key_on_with_its_call_counter(processes):
    first = processes("a", "auto")
    first.keeper.start()
    gate = first.gate()
    for _ in range(12):                 # a burst: the counter modelled at 12 after the last call
        assert gate.go_now()
    gate.completed()
    level = gate.last_level
    first.keeper.stop()                 # releases with the floors
    second = processes("b", "auto")
    second.keeper.start()
    assert second.keeper.holds(ALICE)
    lease = TruthStore(second.store).leases()[KEY_PREFIX + second.fingerprint]
    assert lease.counter_level == level and 11.9 < level <= 12
    taken = second.gate()
    assert 11 < taken.level() <= level  # decayed since that call, at the lane's rate


def test_a_crashed_readers_lease_is_taken_over_after_it_expires(processes):
    crashed = processes("a", "reader")
    crashed.keeper.start()
    crashed.keeper._stop.set()          # the thread stops renewing and nothing is released: a crash
    crashed.keeper._wake.set()
    follower = processes("b", "auto")
    follower.keeper.start()
    assert not follower.keeper.holds(ALICE)
    started = time.monotonic()
    wait_until(lambda: follower.keeper.holds(ALICE), 6.0, "takeover")
    assert time.monotonic() - started <= FAST["lease_seconds"] + 0.5
    assert not crashed.keeper.holds(ALICE)  # it stopped renewing: its own view expired first


def test_a_reader_gets_the_key_from_an_auto_holder_after_its_read_ends(processes):
    auto = processes("auto", "auto").keeper.start()
    assert auto.may_read(ALICE)  # a read in progress
    reader = processes("reader", "reader").keeper.start()
    assert not reader.holds(ALICE)
    wait_until(lambda: not auto.holds(ALICE), 5.0, "the auto holder stopping new reads")
    time.sleep(0.5)
    assert not reader.holds(ALICE)  # the read is still in flight: no second reader yet
    auto.read_done(ALICE)
    wait_until(lambda: reader.holds(ALICE), 5.0, "handover to the reader")
    assert not auto.holds(ALICE)
    wait_until(lambda: auto.live_elsewhere(ALICE), 3.0, "the auto holder seeing the reader")


def test_a_follower_never_takes_a_lease_and_says_nobody_reads(processes):
    follower = processes("f", "follower").keeper.start()
    assert not follower.holds(ALICE)
    assert follower.readers() == {"keys": 1, "here": 0, "elsewhere": 0, "unheld": 1}


def test_a_follower_sees_who_reads_its_keys(processes):
    reader = processes("reader", "reader").keeper.start()
    follower = processes("f", "follower").keeper.start()
    assert reader.holds(ALICE) and not follower.holds(ALICE)
    assert follower.live_elsewhere(ALICE)         # a forced refresh here asks that reader for a round
    assert follower.readers() == {"keys": 1, "here": 0, "elsewhere": 1, "unheld": 0}
    reader.stop()                                 # released: nobody reads it any more
    wait_until(lambda: not follower.live_elsewhere(ALICE), 5.0, "the follower seeing the release")
    assert follower.readers() == {"keys": 1, "here": 0, "elsewhere": 0, "unheld": 1}


def test_only_one_process_is_the_closer(processes):
    keeping = processes("monitor", "reader", closer="keep").keeper.start()
    once = processes("cli", "auto", closer="once").keeper.start()
    assert keeping.closer and not once.closer and not once.take_closer()
    once.closer_done()
    keeping.stop()
    assert once.take_closer()  # nobody holds it now: a direct close may take it


def test_a_process_that_gets_the_closer_later_catches_up(processes):
    first = processes("a", "auto", closer="once").keeper.start()
    caught_up = threading.Event()
    second = processes("b", "auto").keeper
    second.on_closer = caught_up.set
    second.start()
    second.keep_closer()
    first.closer_done()  # gives it back at once
    assert caught_up.wait(5.0) and second.closer
    assert TruthStore(first._truth.store).leases()[CLOSER].holder == "test:b"


def test_leases_name_the_key_by_fingerprint_never_the_key(processes, kraken_config):
    process = processes("a", "auto")
    process.keeper.start()
    names = set(TruthStore(process.store).leases())
    api_key = kraken_config.accounts()[0].broker.credentials.api_key.reveal()
    assert names == {KEY_PREFIX + process.fingerprint}
    assert all(api_key not in name for name in names)


def test_a_key_taken_over_mid_burst_keeps_kraken_s_call_counter(database_url, tmp_path):
    """20 accounts on one Kraken key (starter counter: 15, -0.33 per second; time scale 10): a
    process reads them all (its counter ends near full), stops and releases the lease, another
    takes it at once and reads them all again. The second continues the first one's modelled
    counter from the lease's floors: the fake refuses nothing and every read is good (a process
    counting from 0 would burst on a full counter)."""
    scale = 10.0
    with FakeKraken(enforce_limits=True, time_scale=scale) as kraken:
        creds = kraken.add_account({"USD": "7"})
        builder = ConfigBuilder(tmp_path / "counter")
        builder.settings(**FAST_SETTINGS, database_url=database_url)
        for i in range(20):
            builder.user(f"u{i}", {"kraken": broker_on(kraken, creds)})
        config = builder.load()
        rounds, stores = [], []
        for name in ("a", "b"):
            stores.append(BalanceStore(database_url))
            keeper = LeaseKeeper(TruthStore(stores[-1]), f"test:{name}", "auto", keys_of(config), **FAST)
            service = BalanceService(config, time_scale=scale, gate=keeper)
            keeper.start()
            try:
                assert keeper.holds("u0:kraken")
                rounds.append(service.refresh())
            finally:
                keeper.stop()           # releases the lease with the floors: the next one takes it at once
                service.close()
        for store in stores:
            store.close()
    for states in rounds:
        assert [s.status for s in states] == [Status.OK] * 20, [(s.account_id, s.error) for s in states]
    assert kraken.refused == 0, kraken.limit_stats()["by_reason"]
    assert kraken.limit_stats()["by_key"][creds["api_key"]]["peak_counter"] <= 15
    assert len(kraken.private_calls(creds["api_key"])) == 40
