"""Core benchmarks (``make bench``): print figures, assert nothing.

(a) cold refresh of 50 Kraken accounts, 50 keys, 1.1 s spacing, 50 ms latency: span of the
    private calls and wall time, next to the serial bound and the public-call bound (goal: wall
    within 1.3x the public-call bound);
(b), (e) the fetch plane (``tests/bench/fetch.py``): the service and the manager (history on,
    clock to written) vs a plain ccxt.async_support loop and a threaded sync ccxt baseline at
    2,000 and 20,000 accounts; 2,000 Binance accounts at the real limits, time scaled;
(c) warm ``get_user_balance`` per-call median, p99, p99.9 and max while a forced refresh of 2,000
    accounts runs and two threads loop over the summaries, and the refresh's duration with those
    readers against without (``tests/bench/fetch_worker.py`` ``warm_run``); also with the reads in
    ``python -m bot.monitor`` and the readers in a following process (``follower_run``);
(d) peak RSS with 5,000 configured accounts after one full refresh;
(b), (c) and (d): min / median / max over ``--runs`` runs (default 3), verdicts on the median;
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

from tests.bench.common import RUNS, fake_process, leftovers, spread, temp_entries, verdict, write_kraken_config

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


def bench_b(runs: int = RUNS) -> None:
    from tests.bench import fetch
    fetch.bench_b(runs)


def bench_e() -> None:
    from tests.bench import fetch
    fetch.bench_e()


def bench_c(runs: int = RUNS) -> None:
    """(c): per-call percentiles of warm get_user_balance during a forced refresh (see fetch_worker.warm_run)."""
    from tests.bench.fetch import run

    before = temp_entries()
    results = []
    for _ in range(runs):
        with fake_process("kraken", latency=0.005) as url:
            result = run("warm", url, "2000")
            result["follower"] = run("follower", url, "2000")["busy"]
            results.append(result)
    switch = results[0]["switch_interval_ms"]
    print(f"(c) warm get_user_balance of a user of 2 Kraken accounts (the manager, history off), each call timed, "
          f"while a forced refresh of 2,000 Kraken accounts (1,000 users) runs on another thread and two threads loop "
          f"over get_user_balance_summary and get_all_balances; min / median / max of {runs} runs (a loaded, shared "
          f"2-core machine: noisy; interpreter switch interval {switch:g} ms):", flush=True)
    shapes = {"paced": "paced readers (bursts of 9 calls 1 ms apart; each summary thread 10 calls/s)",
              "busy": "busy readers (all three call back to back)",
              "follower": "busy readers, the reads in the monitor's process (this one a follower: its refresh is "
                          "a round asked of the monitor and waited for until seen here)"}
    for shape, label in shapes.items():
        rows = [r[shape] for r in results]

        def v(key):
            return [row[key] for row in rows]
        print(f"    {label}: {spread(v('calls'), digits=0)} calls timed; median {spread(v('median_us'))} µs "
              f"(goal <= 5: {verdict(v('median_us'), 5)}), p99 {spread(v('p99_us'))} µs (goal <= 20: "
              f"{verdict(v('p99_us'), 20)}), p99.9 {spread(v('p999_us'))} µs, max {spread(v('max_us'), 0.001)} ms "
              f"(goal <= 1: {verdict(v('max_us'), 1000)}), calls over 1 ms {spread(v('over_1ms'), digits=0)}; "
              f"a lock-free call of similar cost in the same loop: median {spread(v('control_median_us'))} µs, "
              f"p99 {spread(v('control_p99_us'))} µs, max {spread(v('control_max_us'), 0.001)} ms; refresh "
              f"{spread(v('refresh_with_readers_s'))} s with the readers vs {spread(v('refresh_alone_s'))} s "
              f"without -> {spread(v('ratio'))}x (goal <= 1.1: {verdict(v('ratio'), 1.1)}); summary calls "
              f"{spread(v('summary_calls'), digits=0)}, wrong answers {sum(v('wrong'))}", flush=True)
    print(f"(c) {leftovers(before)}", flush=True)


def bench_d(runs: int = RUNS) -> None:
    accounts, before = 5000, temp_entries()
    results = []
    for _ in range(runs):
        with fake_process("kraken", latency=0.001) as url:
            results.append(run_worker("rss", url, str(accounts)))
    print(f"(d) {accounts} configured accounts (the manager, history on), one full refresh: peak RSS "
          f"{spread([r['maxrss_mb'] for r in results], digits=0)} MB, min / median / max of {runs} runs "
          f"({min(r['ok'] for r in results)}+ ok, {results[0]['ccxt_instances']} ccxt instances); {leftovers(before)}")


# Benchmarks of the other areas live in their own modules, each with ``main(argv)``.
MODULE_BENCHES = ("store", "alerts", "metrics", "web")
MODULE_BENCHES += ("history",)  # incremental daily close, writer lag, midnight close, 90-day query
MODULE_BENCHES += ("pages",)    # summaries; /api/users and /users open-loop while rounds run
MODULE_BENCHES += ("fleet",)    # distributed mode: a round by one vs three workers


def main(argv: list[str]) -> int:
    """``python -m tests.bench [--runs N] [a b e c d store alerts metrics web history pages]``; no
    name runs them all; ``--runs`` (default 3) is the number of runs of (b), (c) and (d)."""
    argv = list(argv)
    runs = RUNS
    if "--runs" in argv:
        at = argv.index("--runs")
        runs = int(argv[at + 1])
        del argv[at:at + 2]
    core = {"a": bench_a, "b": lambda: bench_b(runs), "e": bench_e, "c": lambda: bench_c(runs),
            "d": lambda: bench_d(runs)}
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
