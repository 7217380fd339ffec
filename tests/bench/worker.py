"""One benchmark measurement in its own process; prints one JSON line (see tests/bench/__main__.py)."""
from __future__ import annotations

import json
import resource
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor

NO_SPACING = {"rate_limits": {"kraken": {"min_interval_seconds": 0, "public_min_interval_seconds": 0}}}


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def manager_run(url: str, accounts: int) -> dict:
    from bot.config import load_config
    from bot.multi_account_broker_manager import MultiAccountBrokerManager
    from tests.bench.common import write_kraken_config

    with write_kraken_config(url, accounts, NO_SPACING) as root:
        config = load_config(root)
    manager = MultiAccountBrokerManager(config)
    start = time.perf_counter()
    states = manager.refresh(force=False)
    cold = time.perf_counter() - start
    start = time.perf_counter()
    states = manager.refresh(force=True)
    warm = time.perf_counter() - start
    errors = sum(s.status.value != "ok" for s in states)
    endpoint, = manager.service._registry.endpoints()
    manager.close()
    return {"rate": accounts / warm, "cold_rate": accounts / cold, "errors": errors, "maxrss_mb": peak_rss_mb(),
            "workers": config.settings.max_workers, "ccxt_instances": endpoint.instances_created}


def bare_run(url: str, accounts: int) -> dict:
    """The same reads with plain ccxt: one instance per account, markets shared, the same worker count."""
    import ccxt

    from bot.config import Settings
    from bot.exchanges.urls import point_exchange_at
    from tests.fakes.kraken import derive_secret

    workers = Settings().max_workers
    public = ccxt.kraken({"enableRateLimit": False})
    point_exchange_at(public, url)
    public.load_markets()
    instances = []
    for i in range(accounts):
        key = f"bench-{i}-0"
        ex = ccxt.kraken({"apiKey": key, "secret": derive_secret(key), "enableRateLimit": False})
        point_exchange_at(ex, url)
        ex.set_markets_from_exchange(public)
        instances.append(ex)
    start = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        results = list(pool.map(lambda ex: ex.fetch_balance(), instances))
    elapsed = time.perf_counter() - start
    assert len(results) == accounts
    return {"rate": accounts / elapsed, "maxrss_mb": peak_rss_mb()}


def warm_run(_url: str, brokers: int) -> dict:
    """get_user_balance on a warm cache (paper accounts: no network involved once warm)."""
    import tempfile
    from pathlib import Path

    from bot.config import load_config
    from bot.multi_account_broker_manager import MultiAccountBrokerManager

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "users").mkdir()
        for u in range(100):
            b = {f"paper{j}": {"paper": True, "balances": {"USD": "100.5", "BTC": "0.1"}, "prices": {"BTC": "50000"}}
                 for j in range(brokers)}
            (root / "users" / f"u{u}.json").write_text(json.dumps({"user_id": f"u{u}", "brokers": b}))
        manager = MultiAccountBrokerManager(load_config(root))
    manager.refresh()
    get = manager.get_user_balance

    def median_of(call, batches=300, per_batch=1000):
        samples = []
        for _ in range(batches):
            start = time.perf_counter_ns()
            for _ in range(per_batch):
                call()
            samples.append((time.perf_counter_ns() - start) / per_batch / 1000)
        samples.sort()
        return statistics.median(samples), samples[int(len(samples) * 0.99)]

    median, p99 = median_of(lambda: get("u42"))
    broker_median, _ = median_of(lambda: get("u42", "paper1"))
    manager.close()
    return {"median_us": median, "p99_us": p99, "broker_median_us": broker_median}


def rss_run(url: str, accounts: int) -> dict:
    result = manager_run(url, accounts)
    return {"maxrss_mb": result["maxrss_mb"], "ok": accounts - result["errors"], "ccxt_instances": result["ccxt_instances"]}


if __name__ == "__main__":
    kind, url, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    run = {"manager": manager_run, "bare": bare_run, "warm": warm_run, "rss": rss_run}[kind]
    print(json.dumps(run(url, count)))
