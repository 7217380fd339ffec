"""Distributed mode: one forced round of Binance accounts whose per-address budget binds, read by
one local reader (the strongest one-address baseline: `BalanceService` in this process), by one
worker and by three workers on 127.0.0.2-4 (``python -m tests.fleet_worker``: ``bot.worker`` with
the fake's time scale). Goal: three workers take <= 0.4x the time of one.

The fake Binance runs in this process at time scale 10 with 600 weight per (scaled) minute per
address, so one address reads about 27 accounts per 6 s window; its limits are reset before
every run, and workers are started afresh for each run (their start is not timed: the clock runs
from the forced refresh to the last state). Needs PostgreSQL: ``BALANCES_TEST_POSTGRES_URL`` or
the machine's postgresql+psycopg://postgres@127.0.0.1:5432/test (a throw-away database is
created and dropped). ``FLEET_BENCH_RUNS`` sets the number of runs (default 3).
"""
from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

from sqlalchemy import create_engine, text

SCALE = 10.0
WEIGHT = 600
ACCOUNTS = 120
RUNS = int(__import__("os").environ.get("FLEET_BENCH_RUNS", "3"))
DEFAULT_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
ADDRESSES = ("127.0.0.2", "127.0.0.3", "127.0.0.4")


def _reachable(url: str) -> bool:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        return True
    except Exception:
        return False
    finally:
        engine.dispose()


def _users(fake) -> dict:
    from tests.fetch_support import auto_broker, binance_key
    return {f"b{i:03d}": {"binance": auto_broker(fake, binance_key(i))} for i in range(ACCOUNTS)}


def _settings() -> dict:
    return {"rate_limits": {"binance": {"weight_per_minute": WEIGHT}}, "first_read_timeout_seconds": 600}


def local_round(fake, root: Path) -> float:
    from tests.fetch_support import service_for, write_config
    write_config(root, _users(fake), **_settings(), fetch={"source_address": ADDRESSES[0]})
    with service_for(root, time_scale=SCALE) as service:
        start = time.perf_counter()
        states = service.refresh()
        elapsed = time.perf_counter() - start
    _check(states, fake)
    return elapsed


def fleet_round(fake, root: Path, database_url: str, workers: int) -> float:
    from bot.app.manager import MultiAccountBrokerManager
    from bot.config import load_config
    from tests.fleet import WorkerProcess, fleet_config, wait_until

    fleet_config(root, database_url, _users(fake), **_settings())
    running = [WorkerProcess(root, address, time_scale=SCALE) for address in ADDRESSES[:workers]]
    manager = MultiAccountBrokerManager(load_config(root, environ={}))
    try:
        manager.open()
        wait_until(lambda: manager.truth.fleet.queue_workers() >= workers, 60, "the workers taking jobs")
        start = time.perf_counter()
        states = manager.refresh()
        elapsed = time.perf_counter() - start
    finally:
        manager.close()
        for worker in running:
            worker.stop()
    _check(states, fake)
    return elapsed


def _check(states, fake) -> None:
    bad = [s.account_id for s in states if s.status.value != "ok"]
    if bad or fake.throttled or fake.banned:
        raise RuntimeError(f"round not clean: {len(bad)} not ok, {fake.throttled} x 429, {fake.banned} x 418")


def _figures(values: list[float]) -> str:
    return f"min {min(values):.2f} / median {statistics.median(values):.2f} / max {max(values):.2f} s"


def main(argv: list[str]) -> int:
    from tests.fakes import FakeBinance
    from tests.store_fixtures import throwaway_database

    server = os.environ.get("BALANCES_TEST_POSTGRES_URL") or DEFAULT_SERVER
    if not _reachable(server):
        print("(fleet) skipped: no PostgreSQL reachable (set BALANCES_TEST_POSTGRES_URL)")
        return 0
    times: dict[str, list[float]] = {"local": [], "1 worker": [], "3 workers": []}
    with FakeBinance(enforce_limits=True, time_scale=SCALE, auto_accounts=True) as fake, \
            throwaway_database(server) as database_url, tempfile.TemporaryDirectory() as tmp:
        fake.limit_rules.weight_limit = WEIGHT
        for run in range(RUNS):
            for name, measure in (("local", lambda root: local_round(fake, root)),
                                  ("1 worker", lambda root: fleet_round(fake, root, database_url, 1)),
                                  ("3 workers", lambda root: fleet_round(fake, root, database_url, 3))):
                fake.reset_limits()
                times[name].append(measure(Path(tmp) / f"{name.replace(' ', '-')}-{run}"))
    one, three = statistics.median(times["1 worker"]), statistics.median(times["3 workers"])
    ratio = three / one
    print(f"(fleet) one forced round of {ACCOUNTS} Binance accounts, {WEIGHT} weight per scaled minute per address "
          f"(time scale {SCALE:g}), {RUNS} runs:")
    for name, values in times.items():
        print(f"  {name:>9}: {_figures(values)}")
    print(f"  1 worker / local reader (the queue's cost at one address): {one / statistics.median(times['local']):.2f}x")
    print(f"  3 workers / 1 worker: {ratio:.2f}x (goal <= 0.4: {'PASS' if ratio <= 0.4 else 'MISS'}); "
          f"0 x 429/418 in every run")
    return 0


if __name__ == "__main__":
    import sys
    sys.exit(main(sys.argv[1:]))
