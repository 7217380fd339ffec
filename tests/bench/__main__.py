"""Core benchmarks (``make bench``): print figures, assert nothing.

(a) cold refresh of 50 Kraken accounts, 50 keys, 1.1 s spacing, 50 ms latency: span of the
    private calls and wall time, next to the serial bound and the public-call bound (goal: wall
    within 1.3x the public-call bound);
(b), (e) the fetch plane (``tests/bench/fetch.py``): service vs a plain ccxt.async_support loop at
    2,000 and 20,000 accounts; 2,000 Binance accounts at the real limits, time scaled;
(c) warm ``get_user_balance`` median and p99 while a forced refresh of 2,000 accounts runs;
(d) peak RSS with 5,000 configured accounts after one full refresh;
then the store, alerts, metrics and web benchmarks (``tests/bench/<name>.py``).

Fakes run in a separate process (``python -m tests.fakes``) for (b) and (d) so that the server
does not share the client's interpreter; (b) and (d) clients run in their own processes so that
each peak RSS is its own.
"""
from __future__ import annotations

import importlib
import json
import subprocess
import sys
import time
from pathlib import Path

from tests.bench.common import fake_process, write_kraken_config

ROOT = Path(__file__).resolve().parents[2]


def bench_a() -> None:
    from bot.multi_account_broker_manager import MultiAccountBrokerManager
    from bot.config import load_config
    from tests.fakes import FakeKraken

    latency, spacing, accounts = 0.05, 1.1, 50
    with FakeKraken(latency=latency, min_interval=spacing, auto_accounts=True) as fake, \
            write_kraken_config(fake.url, accounts, settings={}) as config_dir:
        manager = MultiAccountBrokerManager(load_config(config_dir))
        start = time.monotonic()
        states = manager.refresh(force=False)
        wall = time.monotonic() - start
        manager.close()
        private = [c for c in fake.calls if c.kind == "private"]
        public = sorted((c for c in fake.calls if c.kind == "public"), key=lambda c: c.start)
        span = max(c.end for c in private) - min(c.start for c in private)
        public_interval = manager.service._registry.endpoints()[0].limits.public_interval
        bound = (len(public) - 1) * public_interval + latency
        ok = sum(s.status.value == "ok" for s in states)
        ratio = wall / bound
        print(f"(a) 50 accounts / 50 keys, {spacing} s spacing, {latency * 1000:.0f} ms latency: "
              f"{ok}/{accounts} ok, private calls span {span:.2f} s, wall {wall:.2f} s; "
              f"serial bound {accounts * spacing:.1f} s; public bound ({len(public)} public calls "
              f"at {public_interval:.1f} s + 1 latency) {bound:.2f} s -> wall/bound {ratio:.2f} "
              f"(goal <= 1.3: {'PASS' if ratio <= 1.3 else 'MISS'}); violations {fake.violations}")


def run_worker(*args: str) -> dict:
    out = subprocess.run([sys.executable, "-m", "tests.bench.worker", *args], cwd=ROOT, check=True,
                         capture_output=True, text=True, timeout=600)
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_b() -> None:
    from tests.bench import fetch
    fetch.bench_b()


def bench_e() -> None:
    from tests.bench import fetch
    fetch.bench_e()


def bench_c() -> None:
    from tests.bench.fetch import run, verdict
    with fake_process("kraken", latency=0.005) as url:
        result = run("warm", url, "2000")
    print(f"(c) warm get_user_balance (a user of 2 paper accounts) while a forced refresh of 2,000 Kraken "
          f"accounts runs ({result['batches']} batches of 1,000 calls timed during it): median "
          f"{result['median_us']:.2f} µs per call (goal <= 5: {verdict(result['median_us'] <= 5)}), p99 of the "
          f"batch means {result['p99_us']:.2f} µs (goal <= 20: {verdict(result['p99_us'] <= 20)})")


def bench_d() -> None:
    accounts = 5000
    with fake_process("kraken", latency=0.001) as url:
        result = run_worker("rss", url, str(accounts))
    print(f"(d) {accounts} configured accounts, one full refresh: peak RSS {result['maxrss_mb']:.0f} MB "
          f"({result['ok']} ok, {result['ccxt_instances']} ccxt instances)")


# Benchmarks of the other areas live in their own modules, each with ``main(argv)``.
MODULE_BENCHES = ("store", "alerts", "metrics", "web")
MODULE_BENCHES += ("history",)  # incremental daily close, writer lag, midnight close, 90-day query
MODULE_BENCHES += ("pages",)    # summaries; /api/users and /users open-loop while rounds run
MODULE_BENCHES += ("fleet",)    # distributed mode: a round by one vs three workers


def main(argv: list[str]) -> int:
    """``python -m tests.bench [a b e c d store alerts metrics web]``; no argument runs them all."""
    core = {"a": bench_a, "b": bench_b, "e": bench_e, "c": bench_c, "d": bench_d}
    chosen = argv or [*core, *MODULE_BENCHES]
    for name in chosen:
        if name in core:
            core[name]()
        else:
            print(f"--- {name} ---", flush=True)
            try:
                module = importlib.import_module(f"tests.bench.{name}")
            except ModuleNotFoundError:
                print(f"(no benchmark tests/bench/{name}.py)")
                continue
            module.main([])
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
