"""Metrics benchmark: ``render_metrics`` (the ``/metrics`` body) with 5,000 accounts (goal ≤ 200 ms).

5,000 paper accounts (one per user) holding three assets each are read once (locally, no
exchange), so every account has a value, a success time and three asset amounts (about 35,000
samples); then the scrape is timed. Prints median and p95 with and without the asset series,
and, for comparison, prometheus_client's own ``generate_latest`` on the manager's registry (the
same families through the generic encoder). Prints figures, asserts nothing.

    python -m tests.bench.metrics [--accounts 5000] [--runs 30]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path


def write_paper_config(root: Path, accounts: int, assets: bool) -> None:
    (root / "users").mkdir(parents=True)
    settings = {"database_url": f"sqlite:///{root / 'bench.sqlite3'}",
                "metrics": {"assets": assets, "max_user_accounts": accounts}}
    (root / "settings.json").write_text(json.dumps(settings))
    broker = {"paper": True, "balances": {"USD": "100.5", "BTC": "0.01", "ETH": "0.2"},
              "prices": {"BTC": "50000", "ETH": "2500"}}
    for i in range(accounts):
        user_id = f"user{i:05d}"
        (root / "users" / f"{user_id}.json").write_text(
            json.dumps({"user_id": user_id, "brokers": {"kraken": broker}}))


def measure(accounts: int, runs: int, assets: bool, generic: bool = False) -> dict:
    from prometheus_client import generate_latest

    from bot.config import load_config
    from bot.views.metrics import metrics_for, render_metrics
    from bot.multi_account_broker_manager import MultiAccountBrokerManager

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "config"
        write_paper_config(root, accounts, assets)
        manager = MultiAccountBrokerManager(load_config(root), history=False)
        try:
            manager.refresh()
            body = render_metrics(manager)  # first scrape: builds the registry
            scrape = (lambda: generate_latest(metrics_for(manager).registry)) if generic else (
                lambda: render_metrics(manager))
            times = []
            for _ in range(runs):
                start = time.perf_counter()
                body = scrape()
                times.append(time.perf_counter() - start)
        finally:
            manager.close()
    samples = sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))
    times.sort()
    return {"median_ms": statistics.median(times) * 1000, "p95_ms": times[int(0.95 * (len(times) - 1))] * 1000,
            "samples": samples, "bytes": len(body)}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.metrics")
    parser.add_argument("--accounts", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args(argv)
    for assets in (True, False):
        r = measure(args.accounts, args.runs, assets)
        print(f"metrics: render_metrics with {args.accounts} accounts, assets {'on' if assets else 'off'}: "
              f"median {r['median_ms']:.1f} ms, p95 {r['p95_ms']:.1f} ms "
              f"({r['samples']} samples, {r['bytes'] / 1024:.0f} KiB; goal ≤ 200 ms)")
        sys.stdout.flush()
    r = measure(args.accounts, max(5, args.runs // 3), True, generic=True)
    print(f"metrics: for comparison, prometheus_client generate_latest(registry), assets on: "
          f"median {r['median_ms']:.1f} ms, p95 {r['p95_ms']:.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
