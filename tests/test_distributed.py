"""Distributed mode: workers on 127.0.0.2-4 read through the PostgreSQL task queue.

Real parts: ``python -m bot.worker`` processes (``tests.fleet_worker`` where the fakes are
time-scaled), procrastinate on the machine's PostgreSQL (a throw-away database per test), ccxt's
real code against the loopback fakes, which count every per-key violation (nonce, spacing,
overlap) across all the workers, and every 429/418 per address.
"""
from __future__ import annotations

import subprocess
import sys
import threading
from decimal import Decimal

import pytest
from sqlalchemy import create_engine, text

from bot.app.manager import MultiAccountBrokerManager
from bot.config import ConfigError, load_config
from bot.core.state import Status
from tests.conftest import broker_on
from tests.fakes import FakeBinance, FakeKraken
from tests.fetch_support import auto_broker, binance_key
from tests.fleet import WorkerProcess, faketime_library, fleet_config, readers_of, wait_until
from tests.monitor_process import ROOT, MonitorProcess
from tests.shared_processes import WebProcess, clean_env, cli_values, run_cli
from tests.store_fixtures import throwaway_database

ADDRESSES = ("127.0.0.2", "127.0.0.3", "127.0.0.4")
IN_FLIGHT_SECONDS = 0.4  # a call handed to the HTTP client before the 418 was read arrives within this


@pytest.fixture
def fleet_db(postgres_server_url):
    with throwaway_database(postgres_server_url) as url:
        yield url


def follower(root) -> MultiAccountBrokerManager:
    return MultiAccountBrokerManager(load_config(root, environ={}))


def query(url: str, sql: str, **params):
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return connection.execute(text(sql), params).all()
    finally:
        engine.dispose()


def test_distributed_mode_needs_postgresql(tmp_path):
    root = fleet_config(tmp_path, f"sqlite:///{tmp_path / 'x.db'}", {})
    with pytest.raises(ConfigError, match=r"field 'fetch.mode': distributed mode needs a PostgreSQL database_url"):
        load_config(root, environ={})


@pytest.mark.parametrize("extra, message", [
    ((), "{settings}: field 'fetch.mode': a worker needs \"distributed\", got 'local'"),
    (("--concurrency", "0"), "argument --concurrency: must be 1 to 256, got 0"),
    (("--source-address", "here"), "--source-address: not an IP address: 'here'"),
])
def test_worker_usage_and_configuration_errors_are_one_line(tmp_path, extra, message):
    (tmp_path / "users").mkdir()
    (tmp_path / "settings.json").write_text("{}")
    result = subprocess.run([sys.executable, "-m", "bot.worker", "--config", str(tmp_path), *extra], cwd=ROOT,
                            env=clean_env(), capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == ["error: " + message.format(settings=tmp_path / "settings.json")]


def test_three_workers_share_the_rounds_within_every_limit(tmp_path, fleet_db):
    """90 Binance accounts whose per-address budget binds (600 weight per scaled minute) and 20
    Kraken accounts on 10 keys (two accounts per key, 0.25 s spacing): two forced rounds by three
    workers. Every account is read each time, no 429/418, no per-key violation anywhere, and the
    reads are spread over the three addresses."""
    scale = 10.0
    with FakeBinance(enforce_limits=True, time_scale=scale, auto_accounts=True) as binance, \
            FakeKraken(enforce_limits=True, time_scale=scale, min_interval=0.2) as kraken:
        binance.limit_rules.weight_limit = 600
        kraken_keys = [kraken.add_account({"USD": str(10 * (k + 1))}) for k in range(10)]
        users = {f"b{i}": {"binance": auto_broker(binance, binance_key(i))} for i in range(90)}
        users.update({f"k{i}": {"kraken": broker_on(kraken, kraken_keys[i // 2])} for i in range(20)})
        root = fleet_config(tmp_path, fleet_db, users, rate_limits={
            "binance": {"weight_per_minute": 600}, "kraken": {"min_interval_seconds": 2.5}})
        workers = [WorkerProcess(root, address, time_scale=scale) for address in ADDRESSES]
        manager = follower(root)
        try:
            rounds = [manager.refresh(), manager.refresh()]
            readers = readers_of(fleet_db)
        finally:
            manager.close()
            for worker in workers:
                assert worker.stop() == 0, worker.log
        for states in rounds:
            assert len(states) == 110 and all(s.status is Status.OK for s in states), \
                [(s.account_id, s.error) for s in states if s.status is not Status.OK]
            values = {s.account_id: s.value for s in states}
            assert {values[f"k{i}:kraken"] for i in (0, 1)} == {Decimal("10")}
            assert values["k19:kraken"] == Decimal("100")
        for fake in (binance, kraken):
            assert fake.throttled == 0 and fake.banned == 0, fake.limit_stats()["by_reason"]
            assert fake.violations == {name: 0 for name in fake.violations}, fake.violations
        by_ip = binance.limit_stats()["by_ip"]
        assert set(by_ip) == set(ADDRESSES) and all(by_ip[ip]["accepted"] > 0 for ip in ADDRESSES)
        assert set(readers.values()) == {w.identity for w in workers}
        for creds in kraken_keys:  # 2 accounts x 2 rounds per key, spaced fleet-wide
            assert len(kraken.private_calls(creds["api_key"])) >= 4
        floors = query(fleet_db, "SELECT nonce_floor FROM key_leases WHERE name LIKE 'key:%' AND nonce_floor IS NOT NULL")
        assert len(floors) >= 10  # the Kraken keys' nonces are carried by the database


@pytest.mark.skipif(faketime_library() is None, reason="Debian's faketime is not installed (.ci/run installs it)")
def test_workers_with_different_clocks_keep_each_keys_nonces_and_spacing(tmp_path, fleet_db):
    """Consecutive reads of each Kraken key on workers whose clocks differ by 30 s: the nonce
    floor and the last call travel through the database (by its clock), so the worker whose
    clock is behind still sends higher nonces, and two accounts on one key stay spaced."""
    with FakeKraken(enforce_limits=True, min_interval=0.5) as kraken:
        keys = [kraken.add_account({"USD": str(k + 1)}) for k in range(3)]
        root = fleet_config(tmp_path, fleet_db, {f"u{i}": {"kraken": broker_on(kraken, keys[i // 2])} for i in range(6)},
                            rate_limits={"kraken": {"min_interval_seconds": 0.6}})
        rounds = []
        for offset in (None, "-30s", None):  # one worker at a time: each key's next read is on the other clock
            with WorkerProcess(root, "127.0.0.2", clock_offset=offset) as worker:
                manager = follower(root)
                try:
                    rounds.append(manager.refresh())
                finally:
                    manager.close()
                assert worker.stop() == 0, (offset, worker.log)
        with WorkerProcess(root, "127.0.0.2") as on_time, WorkerProcess(root, "127.0.0.3", clock_offset="+30s") as ahead:
            manager = follower(root)
            try:
                rounds += [manager.refresh(), manager.refresh()]
            finally:
                manager.close()
            assert on_time.stop() == 0 and ahead.stop() == 0, on_time.log + ahead.log
        for states in rounds:
            assert [s.status for s in states] == [Status.OK] * 6, [(s.account_id, s.error) for s in states]
        assert kraken.violations == {name: 0 for name in kraken.violations}, kraken.violations
        assert all(len(kraken.private_calls(k["api_key"])) >= 10 for k in keys)  # 2 accounts x 5 rounds (+ retries)


def test_a_worker_killed_mid_read_loses_nothing(tmp_path, fleet_db):
    """SIGKILL the worker at 127.0.0.2 while its read waits at the exchange: after the stall
    timeout its job goes to another worker; the forced round completes, and no key was ever read
    twice at once (the fake counts overlaps)."""
    with FakeKraken(latency=0.4, enforce_limits=True) as kraken:
        creds = [kraken.add_account({"USD": str(i + 1)}) for i in range(12)]
        root = fleet_config(tmp_path, fleet_db, {f"u{i}": {"kraken": broker_on(kraken, c)} for i, c in enumerate(creds)})
        workers = [WorkerProcess(root, address, concurrency=2) for address in ADDRESSES]
        manager = follower(root)
        try:
            result: dict = {}
            refresher = threading.Thread(target=lambda: result.update(states=manager.refresh()))
            refresher.start()
            victim = workers[0]
            started = wait_until(lambda: [e.api_key for e in kraken.ip_log(victim.address) if e.kind == "private"],
                                 30, "a private call from the victim")
            victim.proc.kill()
            victim.proc.wait(timeout=10)
            refresher.join(timeout=90)
            assert not refresher.is_alive()
            readers = readers_of(fleet_db)
        finally:
            manager.close()
            for worker in workers[1:]:
                assert worker.stop() == 0, worker.log
        states = result["states"]
        assert [s.status for s in states] == [Status.OK] * 12, [(s.account_id, s.error) for s in states]
        assert {s.account_id: s.value for s in states} == {f"u{i}:kraken": Decimal(i + 1) for i in range(12)}
        assert kraken.violations["overlap"] == 0 and kraken.violations["nonce"] == 0
        interrupted = next(i for i, c in enumerate(creds) if c["api_key"] == started[0])
        assert readers[f"u{interrupted}:kraken"] in {w.identity for w in workers[1:]}  # read again elsewhere


def test_a_paused_address_leaves_its_reads_to_the_other_workers(tmp_path, fleet_db):
    """The first Binance call gets a 418 ban (12 s at this scale): that worker stops taking
    Binance jobs, the job goes back to the queue, the others read every account at once, and the
    banned address sends nothing until its Retry-After ends."""
    scale = 10.0
    with FakeBinance(enforce_limits=True, time_scale=scale, auto_accounts=True) as binance:
        binance.inject("http_418")
        root = fleet_config(tmp_path, fleet_db, {f"b{i}": {"binance": auto_broker(binance, binance_key(i))}
                                                 for i in range(30)}, first_read_timeout_seconds=10)
        workers = [WorkerProcess(root, address, time_scale=scale) for address in ADDRESSES]
        manager = follower(root)
        try:
            states = manager.refresh()
        finally:
            manager.close()
            for worker in workers:
                assert worker.stop() == 0, worker.log
        assert all(s.status is Status.OK for s in states), [(s.account_id, s.error) for s in states]
        ban = binance.retry_afters()[0]
        # calls already on their way when the 418 was answered cannot be recalled; none after that
        late = [e for e in binance.ip_log(ban.ip) if ban.issued + IN_FLIGHT_SECONDS < e.time < ban.until]
        assert late == [] and {r.ip for r in binance.retry_afters()} == {ban.ip}
        banned = [w for w in workers if "leaving its reads to the other workers" in w.log]
        assert [w.address for w in banned] == [ban.ip]


def test_monitor_schedules_the_workers_read_and_web_follows(tmp_path, fleet_db):
    """``python -m bot.monitor`` (it reads nothing) queues the rounds, one ``python -m bot.worker``
    reads them, the monitor records their history and reports the worker on /healthz, and
    ``python -m web``'s POST /api/refresh and the CLI's --refresh wait for the workers' reads."""
    with FakeKraken(enforce_limits=True) as kraken:
        creds = [kraken.add_account({"USD": str(100 * (i + 1))}) for i in range(3)]
        root = fleet_config(tmp_path, fleet_db, {f"u{i}": {"kraken": broker_on(kraken, c)} for i, c in enumerate(creds)},
                            cache_ttl_seconds=2.0)
        with MonitorProcess(root) as monitor, WorkerProcess(root, "127.0.0.2") as worker, WebProcess(root) as web:
            wait_until(lambda: len(query(fleet_db, "SELECT 1 FROM snapshots")) >= 3, 30, "the monitor's snapshots")
            status, health = monitor.get("/healthz")
            before = len(kraken.private_calls())
            kraken.set_balance(creds[0]["api_key"], "USD", "150")
            code, body = web.request("/api/refresh", method="POST")
            values = web.values()
            cli = run_cli(root, "--json", "--refresh")
            assert worker.stop() == 0, worker.log
            assert monitor.stop() == 0, monitor.log
            assert web.stop() == 0, web.log
        assert status == 200, health
        assert b'"queue_workers": 1' in health and b'"unheld": 0' in health
        assert code == 200, body
        assert values == {"u0": Decimal("150"), "u1": Decimal("200"), "u2": Decimal("300")}
        assert cli.returncode == 0, cli.stderr
        assert cli_values(cli) == values  # the CLI follows too, its --refresh queued for the worker
        assert len(kraken.private_calls()) > before
        sources = {row[0] for row in query(fleet_db, "SELECT source FROM snapshots")}
        assert sources <= {"initial_connection", "scheduled_sync", "manual_sync", "account_sync"}
        assert "initial_connection" in sources
        assert {e.ip for e in kraken.ip_log()} == {"127.0.0.2"}  # neither the monitor nor the web called it


def test_workers_taking_turns_on_one_kraken_key_keep_its_call_counter(tmp_path, fleet_db):
    """One Kraken key (starter: at most 15, -0.33 per second; time scale 10) shared by 30
    accounts; the workers look for jobs every 0.05 s (at the default 1 s a key's reads are too
    slow for its counter to bind at this scale). The worker at 127.0.0.2 starts a forced round;
    once it has spent the key's burst the one at 127.0.0.3 starts and the first stops, so the
    round ends on a worker that had never called the key; a second round at once is read by that
    one and the one at 127.0.0.4. The key's modelled counter travels through the database with
    its nonce floor: the fake refuses nothing (a worker counting from 0, or only its own calls,
    would go over a nearly full counter), and every account is read both times."""
    scale = 10.0
    with FakeKraken(enforce_limits=True, time_scale=scale) as kraken:
        creds = kraken.add_account({"USD": "25"})
        root = fleet_config(tmp_path, fleet_db, {f"u{i}": {"kraken": broker_on(kraken, creds)} for i in range(30)})

        def start(address):
            return WorkerProcess(root, address, time_scale=scale, poll_seconds=0.05)
        first = start(ADDRESSES[0])
        workers = [first]
        manager = follower(root)
        try:
            result: dict = {}
            refresher = threading.Thread(target=lambda: result.update(states=manager.refresh()))
            refresher.start()
            wait_until(lambda: len(kraken.private_calls(creds["api_key"])) >= 14, 30, "the first worker's burst")
            workers.append(start(ADDRESSES[1]))
            assert first.stop() == 0, first.log
            refresher.join(timeout=60)
            assert not refresher.is_alive()
            first_round = readers_of(fleet_db)
            workers.append(start(ADDRESSES[2]))
            second = manager.refresh()
        finally:
            manager.close()
            for worker in workers[1:]:
                assert worker.stop() == 0, worker.log
        for states in (result["states"], second):
            assert [s.status for s in states] == [Status.OK] * 30, [(s.account_id, s.error) for s in states]
            assert {s.value for s in states} == {Decimal("25")}
        assert set(first_round.values()) == {first.identity, workers[1].identity}  # the turn changed mid-round
        assert kraken.refused == 0, kraken.limit_stats()["by_reason"]
        assert kraken.limit_stats()["by_key"][creds["api_key"]]["peak_counter"] <= 15
        assert kraken.violations == {name: 0 for name in kraken.violations}, kraken.violations
        assert len(kraken.private_calls(creds["api_key"])) == 60  # nothing refused, nothing read twice
        (level,), = query(fleet_db, "SELECT counter_level FROM key_leases WHERE name LIKE 'key:%'")
        assert 10 < level <= 15  # the paced counter after the last read, for the next one
