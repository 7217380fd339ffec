"""Web benchmark: the capacity of ``/api/users`` with 1,000 users, at saturation, while rounds run.

The deployment is `tests.bench.load.deployment` (a fake Kraken, 1,000 users with one Kraken
account and 3 journaled trades each; by default the ``follower`` one: ``python -m bot.monitor``
reads every ``--ttl`` seconds, ``python -m web`` follows the shared state). A closed loop
(`tests.bench.load.closed_loop`: ``wrk`` when installed, Debian package ``wrk``; else the
aiohttp client, which then competes with the server for CPU, and the figure says so) drives
``GET /api/users`` with an admin bearer token over loopback, plain and with
``Accept-Encoding: gzip``, at each of ``--connections``. Prints requests/s (goal >= 300 on 2
cores), p50 and p99 at saturation (a saturated server's latency is its queue: the p99 goal,
<= 100 ms at 300 req/s offered, is measured open loop by ``tests.bench.pages``), errors, and the
rounds that ran during the runs (exchange calls / accounts). Min / median / max over ``--runs``.

    python -m tests.bench.web [--runs 3] [--duration 10] [--connections 16,32] [--threads 2]
                              [--server-threads 4] [--ttl 5] [--deployment follower|reader]
"""
from __future__ import annotations

import argparse
import statistics
import sys

from tests.bench import load
from tests.bench.load import spread, verdict


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.web", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", default="16,32", help="comma-separated connection counts")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--server-threads", type=int, default=4, help="waitress threads")
    parser.add_argument("--ttl", type=float, default=5, help="cache_ttl_seconds: the rounds' period")
    parser.add_argument("--deployment", choices=load.DEPLOYMENTS, default="follower")
    args = parser.parse_args(argv)
    if load.wrk_available():
        driver = "wrk"
    else:
        try:
            import aiohttp  # noqa: F401
        except ImportError:
            print("[web] neither wrk (Debian: apt-get install wrk) nor aiohttp is installed: skipped")
            return 0
        driver = "the aiohttp client (wrk is not installed, Debian: apt-get install wrk; the client competes " \
                 "with the server for CPU, so the figures are lower than wrk's)"
    counts = [int(c) for c in args.connections.split(",")]
    results: dict[tuple, list[dict]] = {}
    with load.deployment(args.deployment, args.ttl, web_threads=args.server_threads) as deployed:
        size = len(load.http_get(deployed.base + "/api/users", load.AUTH)[1])
        for _ in range(args.runs):
            for connections in counts:
                for gz in (False, True):
                    headers = {**load.AUTH, "Accept-Encoding": "gzip" if gz else "identity"}
                    calls = load.fake_stats(deployed.fake_url)["private_calls"]
                    result = load.closed_loop(deployed.base + "/api/users", args.duration, connections, headers,
                                              args.threads)
                    result["rounds"] = (load.fake_stats(deployed.fake_url)["private_calls"] - calls) / load.USERS
                    results.setdefault((connections, gz), []).append(result)
                    deployed.check_alive()
    print(f"[web] /api/users, {load.USERS} users ({size / 1024:.0f} KiB JSON), {args.deployment} deployment "
          f"(waitress {args.server_threads} threads), cache_ttl_seconds {args.ttl:g} (rounds run during the runs); "
          f"closed loop for {args.duration} s by {driver}; {args.runs} runs, min / median / max:", flush=True)
    for connections in counts:
        for gz in (False, True):
            runs = results[(connections, gz)]
            rate = [r["rate"] for r in runs]
            print(f"      {connections:3} connections, {'gzip' if gz else 'identity':8}: {spread(rate, digits=0)} req/s "
                  f"(goal >= 300: {verdict(statistics.median(rate) >= 300)}), at saturation p50 "
                  f"{spread([r['p50'] for r in runs], 1000, 1)} ms, p99 {spread([r['p99'] for r in runs], 1000, 1)} ms; "
                  f"errors {sum(r['errors'] for r in runs)}; rounds during a run {spread([r['rounds'] for r in runs], digits=1)}",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
