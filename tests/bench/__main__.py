"""Core benchmarks (``make bench``): print figures, assert nothing.

(a) cold refresh of 50 Kraken accounts, 50 keys, 1.1 s spacing, 50 ms latency: span of the
    private calls and wall time, next to the serial bound and the public-call bound;
(b) 2,000 accounts, 5 ms latency, no spacing: accounts/s and peak RSS, manager vs bare ccxt;
(c) warm ``get_user_balance`` median;
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
        public_interval = manager._registry.endpoints()[0].rate_limit_ms / 1000
        bound = (len(public) - 1) * public_interval + latency
        ok = sum(s.status.value == "ok" for s in states)
        print(f"(a) 50 accounts / 50 keys, {spacing} s spacing, {latency * 1000:.0f} ms latency: "
              f"{ok}/{accounts} ok, private calls span {span:.2f} s, wall {wall:.2f} s; "
              f"serial bound {accounts * spacing:.1f} s; public bound ({len(public)} public calls "
              f"at {public_interval:.1f} s + 1 latency) {bound:.2f} s -> wall/bound {wall / bound:.2f}; "
              f"violations {fake.violations}")


def run_worker(*args: str) -> dict:
    out = subprocess.run([sys.executable, "-m", "tests.bench.worker", *args], cwd=ROOT, check=True,
                         capture_output=True, text=True, timeout=600)
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_b() -> None:
    accounts = 2000
    with fake_process("kraken", latency=0.005) as url:
        bare = run_worker("bare", url, str(accounts))
        ours = run_worker("manager", url, str(accounts))
    print(f"(b) {accounts} accounts, 5 ms latency, no spacing, {ours['workers']} workers: "
          f"manager {ours['rate']:.0f} accounts/s (cold incl. markets {ours['cold_rate']:.0f}/s), "
          f"peak RSS {ours['maxrss_mb']:.0f} MB, errors {ours['errors']}; "
          f"bare ccxt {bare['rate']:.0f} accounts/s, peak RSS {bare['maxrss_mb']:.0f} MB; "
          f"ratio {ours['rate'] / bare['rate']:.2f}")


def bench_c() -> None:
    result = run_worker("warm", "-", "2")
    print(f"(c) warm get_user_balance: median {result['median_us']:.2f} µs per call "
          f"(user total over 2 accounts), p99 {result['p99_us']:.2f} µs; one broker {result['broker_median_us']:.2f} µs")


def bench_d() -> None:
    accounts = 5000
    with fake_process("kraken", latency=0.001) as url:
        result = run_worker("rss", url, str(accounts))
    print(f"(d) {accounts} configured accounts, one full refresh: peak RSS {result['maxrss_mb']:.0f} MB "
          f"({result['ok']} ok, {result['ccxt_instances']} ccxt instances)")


# Benchmarks of the other areas live in their own modules, each with ``main(argv)``.
MODULE_BENCHES = ("store", "alerts", "metrics", "web")


def main(argv: list[str]) -> int:
    """``python -m tests.bench [a b c d store alerts metrics web]``; no argument runs them all."""
    core = {"a": bench_a, "b": bench_b, "c": bench_c, "d": bench_d}
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
