"""One fetch-plane measurement in its own process; prints one JSON line (see tests/bench/fetch.py).

    python -m tests.bench.fetch_worker service|manager|plain|sync|paced|warm URL ACCOUNTS [EXTRA]

Every reader reads ACCOUNTS Kraken accounts twice, a cold pass then a warm one (the one timed):

``service``  the product's `BalanceService` (no history): ``refresh(force=False)``, then forced;
``manager``  the product's manager with history on (SQLite in the configuration directory): the
             warm forced refresh's clock stops when its snapshots, daily closes and shared states
             are written (``history.flush()``, ``truth.flush()``);
``plain``    the strongest baseline: a plain ``ccxt.async_support`` loop (one loop, markets loaded
             once and shared, the same 16 requests in flight, one kept-alive aiohttp session);
``sync``     the threaded baseline, fair: synchronous ccxt on 16 threads sharing one kept-alive
             ``requests.Session`` (a pool of 16 connections) and the markets, same two passes;
``paced``    the service reads ACCOUNTS Binance accounts at the fake's real limits, time scaled by EXTRA;
``warm``     ``get_user_balance`` timed per call while a forced refresh of ACCOUNTS Kraken accounts runs.

The configuration directory lives (and is removed) within the run: nothing is left behind.
"""
from __future__ import annotations

import asyncio
import json
import resource
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from tests.bench.common import TEMP_PREFIX, write_kraken_config

CONCURRENCY = 16   # Settings().max_workers: requests in flight per host, for every reader
NO_SPACING = {"rate_limits": {"kraken": {"min_interval_seconds": 0, "public_min_interval_seconds": 0}},
              "first_read_timeout_seconds": 900, "max_workers": CONCURRENCY}


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def figures(accounts: int, cold: float, warm: float, cpu: float, errors, **more) -> dict:
    """``errors``: a count, or the warm pass's states (counted, and the first failure's text kept)."""
    first = None
    if not isinstance(errors, int):
        failed = [s for s in errors if s.status.value != "ok"]
        errors, first = len(failed), (failed[0].error if failed else None)
    return {"rate": accounts / warm, "cold_rate": accounts / cold, "cpu_ms": cpu / accounts * 1000,
            "errors": errors, "first_error": first, "maxrss_mb": peak_rss_mb(), **more}


def service_run(url: str, accounts: int) -> dict:
    from bot.balances.service import BalanceService
    from bot.config import load_config

    with write_kraken_config(url, accounts, NO_SPACING) as root:
        service = BalanceService(load_config(root, environ={}))
        start = time.perf_counter()
        service.refresh(force=False)
        cold = time.perf_counter() - start
        cpu, start = cpu_seconds(), time.perf_counter()
        states = service.refresh(force=True)
        warm, cpu = time.perf_counter() - start, cpu_seconds() - cpu
        instances = service._registry.endpoints()[0].instances_created
        service.close()
    return figures(accounts, cold, warm, cpu, states, ccxt_instances=instances)


def manager_run(url: str, accounts: int) -> dict:
    """The manager with history on; each pass's clock stops when what it read is written."""
    from bot.config import load_config
    from bot.multi_account_broker_manager import MultiAccountBrokerManager

    with write_kraken_config(url, accounts, NO_SPACING) as root:
        manager = MultiAccountBrokerManager(load_config(root, environ={}), history=True).open()

        def written_round(force: bool):
            states = manager.refresh(force=force)
            reads_done = time.perf_counter()
            manager.history.flush()
            manager.truth.flush()
            return states, reads_done

        start = time.perf_counter()
        written_round(False)
        cold = time.perf_counter() - start
        cpu, start = cpu_seconds(), time.perf_counter()
        states, reads_done = written_round(True)
        end = time.perf_counter()
        warm, cpu = end - start, cpu_seconds() - cpu
        manager.close()
    return figures(accounts, cold, warm, cpu, states, history_tail_s=end - reads_done)


def plain_run(url: str, accounts: int) -> dict:
    """The strongest baseline: a plain ccxt.async_support loop, no product code on the read path."""
    import aiohttp
    import ccxt.async_support as ccxt_async

    from bot.exchanges.urls import point_exchange_at
    from tests.fakes.kraken import derive_secret

    keys = [f"bench-{i}-0" for i in range(accounts)]
    secrets = [derive_secret(k) for k in keys]

    async def main() -> tuple[float, float, float, int]:
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        public = ccxt_async.kraken({"enableRateLimit": False, "session": session})
        point_exchange_at(public, url)
        await public.load_markets()
        workers = []
        for _ in range(CONCURRENCY):
            ex = ccxt_async.kraken({"enableRateLimit": False, "session": session})
            point_exchange_at(ex, url)
            ex.set_markets_from_exchange(public)
            workers.append(ex)

        async def round_() -> int:
            queue = list(range(accounts))[::-1]
            ok = 0

            async def worker(ex):
                nonlocal ok
                while queue:
                    i = queue.pop()
                    ex.apiKey, ex.secret = keys[i], secrets[i]
                    balance = await ex.fetch_balance()
                    ok += "total" in balance
            await asyncio.gather(*(worker(ex) for ex in workers))
            await public.fetch_tickers()   # one price fetch per round, as the product does
            return ok

        start = time.perf_counter()
        await round_()
        cold = time.perf_counter() - start
        cpu, start = cpu_seconds(), time.perf_counter()
        ok = await round_()
        warm, cpu = time.perf_counter() - start, cpu_seconds() - cpu
        for ex in [public, *workers]:
            ex.session = None
        await session.close()
        return cold, warm, cpu, ok

    cold, warm, cpu, ok = asyncio.run(main())
    return figures(accounts, cold, warm, cpu, accounts - ok)


def sync_run(url: str, accounts: int) -> dict:
    """The threaded baseline, fair: 16 threads of synchronous ccxt sharing one kept-alive session."""
    import ccxt
    import requests

    from bot.exchanges.urls import point_exchange_at
    from tests.fakes.kraken import derive_secret

    keys = [f"bench-{i}-0" for i in range(accounts)]
    secrets = [derive_secret(k) for k in keys]
    session = requests.Session()
    adapter = requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=CONCURRENCY)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    public = ccxt.kraken({"enableRateLimit": False, "session": session})
    point_exchange_at(public, url)
    public.load_markets()
    workers = []
    for _ in range(CONCURRENCY):
        ex = ccxt.kraken({"enableRateLimit": False, "session": session})
        point_exchange_at(ex, url)
        ex.set_markets_from_exchange(public)
        workers.append(ex)

    def round_() -> int:
        queue = list(range(accounts))[::-1]
        lock, ok = threading.Lock(), [0]

        def worker(ex):
            while True:
                with lock:
                    if not queue:
                        return
                    i = queue.pop()
                ex.apiKey, ex.secret = keys[i], secrets[i]
                balance = ex.fetch_balance()
                with lock:
                    ok[0] += "total" in balance
        threads = [threading.Thread(target=worker, args=(ex,)) for ex in workers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        public.fetch_tickers()
        return ok[0]

    start = time.perf_counter()
    round_()
    cold = time.perf_counter() - start
    cpu, start = cpu_seconds(), time.perf_counter()
    ok = round_()
    warm, cpu = time.perf_counter() - start, cpu_seconds() - cpu
    session.close()
    return figures(accounts, cold, warm, cpu, accounts - ok)


def paced_run(url: str, accounts: int, time_scale: float) -> dict:
    """Binance accounts at the fake's real limits (time scaled): how long, how many refusals."""
    from bot.balances.service import BalanceService
    from bot.config import load_config
    from tests.fakes.binance import derive_secret

    with tempfile.TemporaryDirectory(prefix=TEMP_PREFIX) as tmp:
        root = Path(tmp)
        (root / "users").mkdir()
        (root / "settings.json").write_text(json.dumps({"first_read_timeout_seconds": 900}))
        for i in range(accounts):
            key = f"{i:064d}"
            broker = {"exchange": "binance", "api_url": url, "api_key": key, "api_secret": derive_secret(key)}
            (root / "users" / f"user{i:05d}.json").write_text(json.dumps({"user_id": f"user{i:05d}",
                                                                          "brokers": {"binance": broker}}))
        service = BalanceService(load_config(root, environ={}), time_scale=time_scale)
        start = time.perf_counter()
        states = service.refresh(force=False)
        elapsed = time.perf_counter() - start
        report = service.budget_report()["binance"]
        service.close()
    return {"seconds": elapsed, "errors": sum(s.status.value != "ok" for s in states),
            "estimated_round_seconds": report["round_seconds"]}


def percentile(sorted_values: list, fraction: float):
    """The value below which ``fraction`` of ``sorted_values`` lie (nearest rank)."""
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * fraction))]


TRADING_BURST, TRADING_PAUSE = 9, 0.001     # paced trading loop: 9 call pairs, then 1 ms off (odd: the
                                             # pair that first runs after a wake-up alternates its order)
SUMMARY_PERIOD = 0.1                          # paced summary readers: one call per 100 ms each
PAIRS = {"paced": 3, "busy": 1}               # (alone, with readers) refresh pairs per load shape


def warm_run(url: str, accounts: int) -> dict:
    """The manager's ``get_user_balance``, each call timed on its own, while a forced refresh of
    ACCOUNTS Kraken accounts (two a user) runs on another thread and two more threads loop over
    ``get_user_balance_summary`` and ``get_all_balances``; and the refresh's duration without those
    readers (alternating with it, same process, same warm cache) for the ratio of the medians.

    Two load shapes: ``paced`` (the timed thread makes bursts of `TRADING_BURST` calls
    `TRADING_PAUSE` apart, each summary thread calls once per `SUMMARY_PERIOD`) and ``busy`` (all
    three call back to back and never leave the interpreter lock of their own accord, so the
    fetch loop's thread gets it only when the interpreter takes it from them, every switch
    interval). Each timed call is paired with a timed call of a lock-free function of similar cost
    (``sum_known`` of the same two states; the pair's order alternates): the floor that thread
    switching and the OS scheduler set for any call on this machine."""
    from bot.config import load_config
    from bot.multi_account_broker_manager import MultiAccountBrokerManager
    with write_kraken_config(url, accounts, NO_SPACING, brokers_per_user=2) as root:
        manager = MultiAccountBrokerManager(load_config(root, environ={}), history=False)
        manager.refresh(force=False)                         # cold: every account read once
        manager.get_user_balance_summary()                   # the owner index exists (and listens) in both timings
        result = {"switch_interval_ms": sys.getswitchinterval() * 1000}
        for shape, pairs in PAIRS.items():
            result[shape] = _warm_shape(manager, "user00042", pairs, busy=shape == "busy")
        manager.close()
    return result


def follower_run(url: str, accounts: int) -> dict:
    """The ``busy`` shape of `warm_run` in the deployment that keeps reads away from the trading
    loop's interpreter: ``python -m bot.monitor`` reads (its own process), this process follows
    (``fetch.role`` follower; history on: the shared truth is in its store) and runs the three busy
    readers. The refresh timed here is a forced round asked of the monitor and waited for until
    this process sees every account rewritten (`SharedTruth.refresh`)."""
    from bot.config import load_config
    from bot.multi_account_broker_manager import MultiAccountBrokerManager
    from tests.bench.load import Process, clean_env

    settings = {**NO_SPACING, "fetch": {"role": "follower"}}
    with write_kraken_config(url, accounts, settings, brokers_per_user=2) as root:
        monitor = Process("python -m bot.monitor", [sys.executable, "-m", "bot.monitor", "--config", str(root),
                                                    "--metrics-port", "0"], root / "monitor.log", clean_env())
        manager = None
        try:
            manager = MultiAccountBrokerManager(load_config(root, environ={}))
            deadline = time.monotonic() + 300
            while sum(s.status.value == "ok" for s in manager.refresh(force=True)) < accounts:
                if time.monotonic() > deadline or monitor.proc.poll() is not None:
                    raise RuntimeError(f"the monitor did not read every account: {monitor.tail()}")
            while manager.truth.readers()["elsewhere"] < accounts:  # the monitor's leases, seen at a renewal
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the monitor's leases were not seen: {manager.truth.readers()}")
                time.sleep(0.5)  # polling the keeper's view (it renews every few seconds)
            manager.get_user_balance_summary()
            result = {"switch_interval_ms": sys.getswitchinterval() * 1000,
                      "busy": _warm_shape(manager, "user00042", PAIRS["paced"], busy=True)}
        finally:
            if manager is not None:
                manager.close()
            monitor.stop()
    return result


def _warm_shape(manager, user: str, pairs: int, busy: bool) -> dict:
    from bot.core.state import sum_known

    get, ns = manager.get_user_balance, time.perf_counter_ns
    states = tuple(manager.service.states(manager.service.owner_ids(user)))
    expected = get(user)
    calls, control, alone, together, wrong = [], [], [], [], 0
    loops = {"summary": 0, "all_balances": 0}
    for _ in range(pairs):
        start = time.perf_counter()
        manager.refresh(force=True)
        alone.append(time.perf_counter() - start)
        stop, done = threading.Event(), threading.Event()

        def loop(name, call):
            while not stop.is_set():
                call()
                loops[name] += 1
                if not busy:
                    stop.wait(SUMMARY_PERIOD)

        def refresh():
            begin = time.perf_counter()
            manager.refresh(force=True)
            together.append(time.perf_counter() - begin)
            done.set()
        threads = [threading.Thread(target=loop, args=("summary", manager.get_user_balance_summary)),
                   threading.Thread(target=loop, args=("all_balances", manager.get_all_balances)),
                   threading.Thread(target=refresh)]
        for thread in threads:
            thread.start()
        burst, flip = (1 if busy else TRADING_BURST), False
        while not done.is_set():
            for _ in range(burst):
                flip = not flip
                if flip:
                    t0 = ns()
                    value = get(user)
                    t1 = ns()
                    sum_known(states)
                    t2 = ns()
                    calls.append(t1 - t0)
                    control.append(t2 - t1)
                else:
                    t0 = ns()
                    sum_known(states)
                    t1 = ns()
                    value = get(user)
                    t2 = ns()
                    control.append(t1 - t0)
                    calls.append(t2 - t1)
                wrong += value != expected
            if not busy:
                time.sleep(TRADING_PAUSE)
        stop.set()
        for thread in threads:
            thread.join()
    calls.sort()
    control.sort()
    us = 1000.0
    return {"calls": len(calls), "median_us": percentile(calls, 0.5) / us, "p99_us": percentile(calls, 0.99) / us,
            "p999_us": percentile(calls, 0.999) / us, "max_us": calls[-1] / us,
            "over_1ms": sum(1 for c in calls if c > 1_000_000),
            "control_median_us": percentile(control, 0.5) / us, "control_p99_us": percentile(control, 0.99) / us,
            "control_max_us": control[-1] / us, "control_over_1ms": sum(1 for c in control if c > 1_000_000),
            "refresh_alone_s": statistics.median(alone), "refresh_with_readers_s": statistics.median(together),
            "ratio": statistics.median(together) / statistics.median(alone),
            "summary_calls": loops["summary"], "all_balances_calls": loops["all_balances"], "wrong": wrong}


if __name__ == "__main__":
    kind, url, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if kind == "paced":
        print(json.dumps(paced_run(url, count, float(sys.argv[4]))))
    else:
        runs = {"service": service_run, "manager": manager_run, "plain": plain_run, "sync": sync_run, "warm": warm_run,
                "follower": follower_run}
        print(json.dumps(runs[kind](url, count)))
