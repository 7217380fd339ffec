"""One truth across real processes on one configuration, against the loopback fake Kraken (which
counts overlap, spacing and nonce violations per key), on SQLite and on PostgreSQL.

A deployment: ``python -m bot.monitor`` (the reader), ``python -m web`` (auto, with its scheduler),
an in-process manager (auto) and a loop of CLI runs, for a bounded time, with forced refreshes from
the web and the CLI. The default run lasts ~20 s per database; the ``soak`` marker runs it for
two minutes (``pytest -m soak``, run by .ci/run). Then: SIGKILL of the reader and the takeover.
Measured figures (follower latency, in-process answer time, takeover time) are printed (``-s``).
"""
from __future__ import annotations

import signal
import socket
import statistics
import threading
import time
from contextlib import closing
from decimal import Decimal as D

import pytest

from bot.multi_account_broker_manager import MultiAccountBrokerManager
from bot.store import BalanceStore, default_database_url
from bot.store.leases import KEY_PREFIX
from bot.store.truth import TruthStore
from tests.fakes import FakeKraken
from tests.monitor_process import MonitorProcess, value_of, wait_until
from tests.shared_processes import USERS, WebProcess, cli_values, run_cli, shared_config
from tests.store_fixtures import throwaway_database

KEYED = tuple(f"{user}:kraken" for user in USERS)
BALANCE_EX = "/0/private/BalanceEx"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, config):
    """The deployment's database: the configuration's SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield None
        return
    with throwaway_database(request.getfixturevalue("postgres_server_url")) as url:
        yield url


@pytest.fixture
def kraken():
    with FakeKraken(min_interval=1.0) as fake:  # Kraken: one private call per key per second, or a violation
        yield fake


def store_url(config, database_url):
    return database_url or default_database_url(config.root)


def all_up(samples) -> bool:
    return all(value_of(samples, "multibalance_account_up", owner=u, broker="kraken", exchange="kraken") == 1
               for u in USERS)


def monitor_values(samples) -> dict:
    return {u: D(str(value_of(samples, "multibalance_account_value", owner=u, broker="kraken"))) for u in USERS}


def run_deployment(config, kraken, database_url, seconds: float) -> None:
    creds = shared_config(config, kraken, database_url, request_timeout_seconds=3)
    host = socket.gethostname()
    with MonitorProcess(config.root) as monitor:
        monitor.wait_for(all_up, timeout=60, what="every account read by the monitor")
        reader = f"{host}:{monitor.proc.pid}/"
        with WebProcess(config.root) as web, closing(MultiAccountBrokerManager(config.load()).open()) as manager:
            rows, answers, cli_runs, web_refreshes = [], [], [], []
            manager.truth.shared.subscribe_rows(lambda row, old: rows.append((row, time.time())))
            stop = threading.Event()

            def cli_loop():
                n = 0
                while not stop.is_set():
                    args = ("--json", "--refresh") if n % 2 else ("--json",)
                    result = run_cli(config.root, *args)
                    cli_runs.append((args, result))
                    n += 1

            def web_loop():
                while not stop.wait(2.0):
                    web_refreshes.append(web.request("/api/refresh", "POST"))

            threads = [threading.Thread(target=cli_loop), threading.Thread(target=web_loop)]
            for thread in threads:
                thread.start()
            deadline = time.monotonic() + seconds
            try:
                while time.monotonic() < deadline:  # the bot's trading loop asking the in-process API
                    for user in USERS:
                        started = time.perf_counter()
                        value = manager.get_user_balance(user)
                        answers.append(time.perf_counter() - started)
                        assert value is not None
                    stop.wait(0.01)
            finally:
                stop.set()
                for thread in threads:
                    thread.join()

            # every process shows the same values: new balances, one forced refresh from the web
            expected = {user: D(1000 + i) for i, user in enumerate(USERS)}
            for user, value in expected.items():
                kraken.set_balance(creds[user]["api_key"], "USD", str(value))
            status, body = web.request("/api/refresh", "POST")
            assert status == 200 and body["complete"], body
            assert {a["account_id"]: D(str(a["value"])) for a in body["accounts"] if a["account_id"] in KEYED} == \
                {f"{u}:kraken": v for u, v in expected.items()}
            assert web.values() == expected
            assert cli_values(run_cli(config.root, "--json")) == expected
            wait_until(lambda: {u: manager.get_user_balance(u) for u in USERS} == expected, 1.0, "the in-process view")
            assert monitor_values(monitor.samples()) == expected
            health = web.request("/healthz")[1]
            assert health["readers"] == {"keys": 3, "here": 0, "elsewhere": 3, "unheld": 0}
            assert manager.truth.readers()["elsewhere"] == 3
            assert web.stop() == 0, web.log
        assert monitor.stop() == 0, monitor.log

    assert kraken.violations == {name: 0 for name in kraken.violations}, kraken.violations
    assert cli_runs and all(result.returncode == 0 for _, result in cli_runs), [r.stderr for _, r in cli_runs]
    assert any(args == ("--json", "--refresh") for args, _ in cli_runs)
    assert web_refreshes and all(s == 200 and b["complete"] for s, b in web_refreshes), web_refreshes
    followed = [(row, seen) for row, seen in rows if row.state.account_id in KEYED]
    assert followed and {row.reader.startswith(reader) for row, _ in followed} == {True}  # only the monitor read
    # every BalanceEx call at the fake is a read the monitor published: the CLI, the web and the
    # in-process manager made none
    with BalanceStore(store_url(config, database_url)) as store:
        versions = {r.state.account_id: r.version for r in TruthStore(store).states()}
    assert sum(versions[a] for a in KEYED) == sum(1 for c in kraken.private_calls() if c.path == BALANCE_EX)
    latency = sorted(seen - row.updated_at.timestamp() for row, seen in followed)
    print(f"\n[{database_url and 'postgresql' or 'sqlite'}] {len(followed)} followed writes: follower latency "
          f"p50 {statistics.median(latency) * 1000:.0f} ms, max {latency[-1] * 1000:.0f} ms; in-process answers "
          f"p50 {statistics.median(answers) * 1e6:.1f} us over {len(answers)} calls; {len(cli_runs)} CLI runs, "
          f"{len(web_refreshes)} web refreshes; {sum(versions[a] for a in KEYED)} exchange reads")
    assert latency[-1] < 1.0
    assert statistics.median(answers) < 1e-3


def test_monitor_web_cli_and_bot_share_one_truth(config, kraken, database_url):
    run_deployment(config, kraken, database_url, seconds=20)


@pytest.mark.soak
def test_monitor_web_cli_and_bot_share_one_truth_for_two_minutes(config, kraken, database_url):
    run_deployment(config, kraken, database_url, seconds=120)


def test_a_killed_reader_is_replaced_within_30_seconds_and_nonces_keep_rising(config, kraken, database_url):
    shared_config(config, kraken, database_url, ttl=600)  # the monitor reads once, then idles
    truth_url = store_url(config, database_url)
    with MonitorProcess(config.root) as monitor:
        monitor.wait_for(all_up, timeout=60, what="every account read by the monitor")
        with closing(MultiAccountBrokerManager(config.load()).open()) as manager:
            assert manager.truth.readers() == {"keys": 3, "here": 0, "elsewhere": 3, "unheld": 0}
            with BalanceStore(truth_url) as store:
                floors = wait_until(lambda: _floors_written(store), 10.0, "the monitor's floors")
            monitor.proc.send_signal(signal.SIGKILL)
            killed = time.monotonic()
            monitor.proc.wait(timeout=10)
            wait_until(lambda: manager.truth.readers()["here"] == 3, 40.0, "takeover by the in-process manager")
            takeover = time.monotonic() - killed
            states = manager.refresh()
    print(f"\n[{database_url and 'postgresql' or 'sqlite'}] lease takeover {takeover:.1f} s after SIGKILL")
    assert takeover <= 30.5
    assert {s.account_id: s.status.value for s in states if s.account_id in KEYED} == {a: "ok" for a in KEYED}
    assert kraken.violations == {name: 0 for name in kraken.violations}, kraken.violations
    with BalanceStore(truth_url) as store:
        after = _floors_written(store)
        assert set(store.last_snapshots()) >= set(KEYED)  # the monitor's history is still there
    assert all(after[name] > floors[name] for name in floors)  # nonces kept rising across readers


def _floors_written(store) -> dict | None:
    """Lease name → nonce floor once every key's lease has one."""
    leases = {name: lease.nonce_floor for name, lease in TruthStore(store).leases().items()
              if name.startswith(KEY_PREFIX)}
    return leases if len(leases) == 3 and all(leases.values()) else None


def test_a_followers_forced_refresh_asks_the_reader_for_a_round(config, kraken, database_url):
    """The bot as a follower (``fetch.role``) of the monitor: its ``refresh()`` is a round read by
    the monitor and waited for, never a read of its own and never the old values."""
    creds = shared_config(config, kraken, database_url, ttl=600, fetch={"role": "follower"})
    with MonitorProcess(config.root) as monitor:            # the monitor reads whatever the role says
        monitor.wait_for(all_up, timeout=60, what="every account read by the monitor")
        with closing(MultiAccountBrokerManager(config.load()).open()) as manager:
            assert manager.truth.readers() == {"keys": 3, "here": 0, "elsewhere": 3, "unheld": 0}
            before = sum(1 for c in kraken.private_calls() if c.path == BALANCE_EX)
            expected = {f"{user}:kraken": D(5000 + i) for i, user in enumerate(USERS)}
            for i, user in enumerate(USERS):
                kraken.set_balance(creds[user]["api_key"], "USD", str(5000 + i))
            states = manager.refresh()
            assert {s.account_id: s.value for s in states if s.account_id in KEYED} == expected
            assert {u: manager.get_user_balance(u) for u in USERS} == dict(zip(USERS, expected.values()))
            assert sum(1 for c in kraken.private_calls() if c.path == BALANCE_EX) == before + len(KEYED)
            assert manager.truth.readers()["here"] == 0
        assert monitor.stop() == 0, monitor.log
