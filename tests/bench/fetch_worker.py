"""One fetch-plane measurement in its own process; prints one JSON line (see tests/bench/fetch.py).

    python -m tests.bench.fetch_worker service|plain|paced|warm URL ACCOUNTS [EXTRA]

``service``: the product's `BalanceService` reads ACCOUNTS Kraken accounts cold, then once more
forced; ``plain``: the same reads with a plain ``ccxt.async_support`` loop (one loop, markets
loaded once and shared, the same concurrency, one kept-alive aiohttp session); ``paced``: the
service reads ACCOUNTS Binance accounts at the fake's real limits, time scaled by EXTRA; ``warm``:
``get_user_balance`` timed while a forced refresh of ACCOUNTS Kraken accounts runs.
"""
from __future__ import annotations

import asyncio
import json
import resource
import statistics
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
import tempfile

CONCURRENCY = 16   # Settings().max_workers: requests in flight per host, for both readers
NO_SPACING = {"rate_limits": {"kraken": {"min_interval_seconds": 0, "public_min_interval_seconds": 0}},
              "first_read_timeout_seconds": 900, "max_workers": CONCURRENCY}


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@contextmanager
def kraken_config(url: str, accounts: int, settings: dict, paper_users: int = 0):
    from tests.fakes.kraken import derive_secret

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "users").mkdir()
        (root / "settings.json").write_text(json.dumps(settings))
        for i in range(accounts):
            key = f"bench-{i}-0"
            broker = {"exchange": "kraken", "api_url": url, "api_key": key, "api_secret": derive_secret(key)}
            (root / "users" / f"user{i:05d}.json").write_text(json.dumps({"user_id": f"user{i:05d}",
                                                                          "brokers": {"kraken": broker}}))
        for i in range(paper_users):
            brokers = {f"paper{j}": {"paper": True, "balances": {"USD": "100.5", "BTC": "0.1"},
                                     "prices": {"BTC": "50000"}} for j in range(2)}
            (root / "users" / f"paper{i:03d}.json").write_text(json.dumps({"user_id": f"paper{i:03d}",
                                                                           "brokers": brokers}))
        yield root


def service_run(url: str, accounts: int) -> dict:
    from bot.balances.service import BalanceService
    from bot.config import load_config

    with kraken_config(url, accounts, NO_SPACING) as root:
        service = BalanceService(load_config(root, environ={}))
    start = time.perf_counter()
    states = service.refresh(force=False)
    cold = time.perf_counter() - start
    cpu, start = cpu_seconds(), time.perf_counter()
    states = service.refresh(force=True)
    warm, cpu = time.perf_counter() - start, cpu_seconds() - cpu
    errors = sum(s.status.value != "ok" for s in states)
    instances = service._registry.endpoints()[0].instances_created
    service.close()
    return {"rate": accounts / warm, "cold_rate": accounts / cold, "cpu_ms": cpu / accounts * 1000,
            "errors": errors, "maxrss_mb": peak_rss_mb(), "ccxt_instances": instances}


def plain_run(url: str, accounts: int) -> dict:
    """The fair baseline: a plain ccxt.async_support loop, no product code on the read path."""
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
    return {"rate": accounts / warm, "cold_rate": accounts / cold, "cpu_ms": cpu / accounts * 1000,
            "errors": accounts - ok, "maxrss_mb": peak_rss_mb()}


def paced_run(url: str, accounts: int, time_scale: float) -> dict:
    """Binance accounts at the fake's real limits (time scaled): how long, how many refusals."""
    from bot.balances.service import BalanceService
    from bot.config import load_config
    from tests.fakes.binance import derive_secret

    with tempfile.TemporaryDirectory() as tmp:
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


def warm_run(url: str, accounts: int) -> dict:
    """get_user_balance on warm paper accounts while a forced refresh of Kraken accounts runs."""
    from bot.balances.service import BalanceService
    from bot.config import load_config

    with kraken_config(url, accounts, NO_SPACING, paper_users=100) as root:
        service = BalanceService(load_config(root, environ={}))
    service.refresh(force=False)
    ids = service.owner_ids("paper042")
    done = threading.Event()
    refresher = threading.Thread(target=lambda: (service.refresh(force=True), done.set()))
    samples = []
    refresher.start()
    while not done.is_set() and len(samples) < 2000:
        start = time.perf_counter_ns()
        for _ in range(1000):
            service.balance("paper042")
        samples.append((time.perf_counter_ns() - start) / 1000 / 1000)
    refresher.join()
    service.close()
    samples.sort()
    return {"median_us": statistics.median(samples), "p99_us": samples[int(len(samples) * 0.99)],
            "batches": len(samples), "during_refresh": not done.is_set() or len(samples) > 0, "accounts": len(ids)}


if __name__ == "__main__":
    kind, url, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if kind == "paced":
        print(json.dumps(paced_run(url, count, float(sys.argv[4]))))
    else:
        print(json.dumps({"service": service_run, "plain": plain_run, "warm": warm_run}[kind](url, count)))
