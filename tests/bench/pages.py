"""Pages benchmark: the bot's summaries, and ``/api/users`` and ``/users`` under open-loop load
while rounds run. Figures, each min / median / max over ``--runs`` runs, printed with goal and
verdict:

  summaries  ``get_user_balance_summary`` and ``get_all_balances`` over 1,000 users (2,000 paper
             accounts, in this process), per-call median of 3 s of calls, idle and while forced
             rounds run back to back in another thread (goals <= 2 ms and <= 0.5 ms), with the
             calling thread's own CPU time per call beside it (wall minus CPU: waiting for the GIL)
  web        1,000 users with one Kraken account each on a fake Kraken, ``cache_ttl_seconds`` =
             ``--ttl`` (rounds of every account run during the load), in both deployments of
             ``tests.bench.load``: ``follower`` (the normal one: ``python -m bot.monitor`` reads,
             ``python -m web`` follows the shared state) and ``reader`` (``python -m web`` alone,
             reading too: the rounds share its GIL). For /api/users and /users, identity and gzip:
             an open loop at a fixed offered rate (``--rate``, latency from the scheduled send
             time) for ``--duration`` s: achieved rate, p50 / p99 / max (goal p99 <= 100 ms at
             300 req/s offered); then a closed loop of ``--connections`` connections (wrk when
             installed) as fast as the server answers (goal >= 300 req/s). Also: the rounds that
             ran during the open loop (exchange calls / accounts), the CPU the web process (and
             the reader) used meanwhile, and the distinct bodies served (ETags: rebuilds, at most
             one per ``payload_max_age_seconds`` (``--max-age``, 5 s) period the run touches).

    python -m tests.bench.pages [--runs 3] [--rate 300] [--duration 10] [--ttl 5] [--max-age 5]
                                [--only summaries|web] [--deployment follower|reader]
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from tests.bench import load
from tests.bench.load import spread, verdict

USERS = load.USERS


# --------------------------------------------------------------------------- summaries

def summaries(runs: int) -> None:
    from bot.config import load_config
    from bot.core.sources import SCHEDULED
    from bot.multi_account_broker_manager import MultiAccountBrokerManager

    with tempfile.TemporaryDirectory(prefix="mb-bench-pages-") as tmp:
        root = Path(tmp)
        (root / "users").mkdir()
        (root / "settings.json").write_text("{}")
        for i in range(USERS):
            brokers = {"kraken": {"paper": True, "balances": {"USD": str(100 + i), "BTC": "0.01"},
                                  "prices": {"BTC": "60000"}},
                       "coinbase": {"paper": True, "balances": {"USD": str(i % 50)}}}
            (root / "users" / f"u{i:04d}.json").write_text(json.dumps({"user_id": f"u{i:04d}", "brokers": brokers}))
        manager = MultiAccountBrokerManager(load_config(root), history=False)
        try:
            manager.refresh()
            figures: dict[str, list[float]] = {}
            for _ in range(runs):
                for mode in ("idle", "rounds"):
                    stop = threading.Event()
                    rounds = [0]

                    def loop() -> None:
                        while not stop.is_set():
                            manager.refresh(force=True, source=SCHEDULED)
                            rounds[0] += 1

                    worker = threading.Thread(target=loop) if mode == "rounds" else None
                    if worker is not None:
                        worker.start()
                    try:
                        for name, call in (("summary", manager.get_user_balance_summary),
                                           ("all", manager.get_all_balances)):
                            samples, cpu = [], []
                            until = time.perf_counter() + 3.0  # 3 s of calls (thousands), rounds or not
                            while len(samples) < 200 or time.perf_counter() < until:
                                started, used = time.perf_counter(), time.thread_time()
                                call()
                                cpu.append(time.thread_time() - used)
                                samples.append(time.perf_counter() - started)
                            samples.sort()
                            figures.setdefault(f"{name}:{mode}", []).append(statistics.median(samples))
                            figures.setdefault(f"{name}:{mode}:cpu", []).append(statistics.median(cpu))
                            figures.setdefault(f"{name}:{mode}:p99", []).append(samples[int(0.99 * len(samples))])
                    finally:
                        stop.set()
                        if worker is not None:
                            worker.join()
                    if mode == "rounds":
                        figures.setdefault("rounds", []).append(rounds[0])
        finally:
            manager.close()
    for name, label, goal in (("summary", "get_user_balance_summary", 2.0), ("all", "get_all_balances", 0.5)):
        for mode in ("idle", "rounds"):
            medians = figures[f"{name}:{mode}"]
            extra = f", {spread(figures['rounds'], digits=0)} rounds during the calls" if mode == "rounds" else ""
            print(f"[pages] {label}, 1,000 users / 2,000 accounts, {mode}: median per call "
                  f"{spread(medians, 1000, 3)} ms (goal <= {goal} ms: {verdict(statistics.median(medians) * 1000 <= goal)}); "
                  f"p99 {spread(figures[f'{name}:{mode}:p99'], 1000, 3)} ms; the calling thread's CPU per call, "
                  f"median {spread(figures[f'{name}:{mode}:cpu'], 1000, 3)} ms (the rest of the wall time is "
                  f"waiting for the interpreter lock the rounds hold){extra}", flush=True)


# --------------------------------------------------------------------------- the web bench

PATHS = ("/api/users", "/users")


def web(runs: int, rate: float, duration: float, ttl: float, connections: int, max_age: float = 5,
        kinds: tuple[str, ...] = load.DEPLOYMENTS) -> None:
    for kind in kinds:
        results: dict[tuple, list[dict]] = {}
        with load.deployment(kind, ttl, max_age) as deployed:
            for _ in range(runs):
                for path in PATHS:
                    for gz in (False, True):
                        headers = {**load.AUTH, "Accept-Encoding": "gzip" if gz else "identity"}
                        calls = load.fake_stats(deployed.fake_url)["private_calls"]
                        cpu, began = deployed.cpu(), time.monotonic()
                        opened = load.open_loop(deployed.base + path, rate, duration, connections, headers)
                        elapsed = time.monotonic() - began
                        used = {name: (value - cpu[name]) / elapsed for name, value in deployed.cpu().items()}
                        opened["rounds"] = (load.fake_stats(deployed.fake_url)["private_calls"] - calls) / load.USERS
                        opened["cpu"] = used
                        closed = load.closed_loop(deployed.base + path, duration / 2, connections, headers)
                        results.setdefault((path, gz), []).append({"open": opened, "closed": closed})
                        deployed.check_alive()
        report_web(kind, results, runs, rate, duration, ttl, connections, max_age)


def report_web(kind: str, results: dict, runs: int, rate: float, duration: float, ttl: float, connections: int,
               max_age: float) -> None:
    who = ("python -m bot.monitor reads (role reader), python -m web follows (fetch.role follower)"
           if kind == "follower" else "python -m web alone, reading too (the rounds run in the web process)")
    print(f"[pages] web, {kind} deployment: {who}; {load.USERS} users, waitress 4 threads, cache_ttl_seconds "
          f"{ttl:g} (rounds run during the load), payload_max_age_seconds {max_age:g}; client at most {connections} "
          f"connections; {runs} runs, min / median / max:", flush=True)
    for path in PATHS:
        for gz in (False, True):
            name = f"{path} {'gzip' if gz else 'identity'}"
            opened = [r["open"] for r in results[(path, gz)]]
            closed = [r["closed"] for r in results[(path, gz)]]
            p99 = [r["p99"] for r in opened]
            capacity = [r["rate"] for r in closed]
            errors = sum(sum(r["errors"].values()) for r in opened) + sum(r["errors"] for r in closed)
            builds = [r["etags"] for r in opened]
            bounds = [math.ceil(r["elapsed"] / max_age) + 1 for r in opened]  # periods the run touched
            cpu = "; ".join(f"{proc} CPU {spread([r['cpu'][proc] for r in opened], 100, 0)} %"
                            for proc in opened[0]["cpu"])
            print(f"      {name:20} open loop at {rate:.0f} req/s for {duration:g} s: achieved "
                  f"{spread([r['rate'] for r in opened], digits=0)} req/s, p50 "
                  f"{spread([r['p50'] for r in opened], 1000, 1)} ms, p99 {spread(p99, 1000, 1)} ms "
                  f"(goal <= 100 ms: {verdict(statistics.median(p99) <= 0.100)}), max "
                  f"{spread([r['max'] for r in opened], 1000, 0)} ms, {opened[0]['bytes'] / 1024:.0f} KiB/response",
                  flush=True)
            print(f"      {'':20} during it: rounds {spread([r['rounds'] for r in opened], digits=1)}, {cpu}, client "
                  f"CPU {spread([r['client_cpu'] for r in opened], 100, 0)} %; distinct bodies "
                  f"{spread(builds, digits=0)} (goal <= {spread(bounds, digits=0)}: one per payload_max_age_seconds period "
                  f"the run touched{'; /users: one more per new session' if path == '/users' else ''}: "
                  f"{verdict(path == '/users' or all(b <= n for b, n in zip(builds, bounds)))})", flush=True)
            print(f"      {'':20} closed loop, {connections} connections ({closed[0]['tool']}): "
                  f"{spread(capacity, digits=0)} req/s (goal >= 300: {verdict(statistics.median(capacity) >= 300)}), "
                  f"p99 at saturation {spread([r['p99'] for r in closed], 1000, 0)} ms; errors {errors}", flush=True)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.pages", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rate", type=float, default=300)
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument("--ttl", type=float, default=5)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--max-age", type=float, default=5, help="web.payload_max_age_seconds (5)")
    parser.add_argument("--only", choices=("summaries", "web"))
    parser.add_argument("--deployment", choices=load.DEPLOYMENTS, help="only this deployment (default both)")
    args = parser.parse_args(argv)
    if args.only in (None, "summaries"):
        summaries(args.runs)
    if args.only in (None, "web"):
        try:
            import aiohttp  # noqa: F401
        except ImportError:
            print("[pages] web: aiohttp is not installed: skipped")
            return 0
        web(args.runs, args.rate, args.duration, args.ttl, args.connections, args.max_age,
            (args.deployment,) if args.deployment else load.DEPLOYMENTS)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
