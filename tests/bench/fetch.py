"""Fetch-plane benchmarks (``make bench``; ``python -m tests.bench b e``): print each figure with
its goal and verdict (on the median), min / median / max over ``runs`` runs, assert nothing.

(b) 2,000 and 20,000 Kraken accounts, 5 ms latency, no limits, 16 requests in flight for every
    reader, each reader in its own process reading every account twice (a cold pass, then the
    warm pass that is timed; runs alternate the readers' order):
    - ``plain``: the strongest baseline, a plain ``ccxt.async_support`` loop (one loop, markets
      loaded once and shared, one kept-alive aiohttp session);
    - ``sync``: the fair threaded baseline, synchronous ccxt on 16 threads sharing one kept-alive
      ``requests.Session`` and the markets;
    - ``service``: the product's `BalanceService` (history off);
    - ``manager``: the product's manager with history on, the clock stopped only when the round's
      history (and shared states) are written.
    Figures: accounts/s and the ratio to each baseline in the same run (goal >= 0.9 against the
    plain loop), CPU per read of the warm pass (user + system time of the reader's process;
    goal <= 0.35 ms), peak RSS (goal <= 250 MB at 20,000).
(e) 2,000 Binance accounts on one address at Binance's real limits (6,000 weight per minute,
    ``/api/v3/account`` 20), every duration scaled 20× (a Binance minute lasts 3 s; the service
    gets the same ``time_scale``): refusals counted by the fake (429, 418, others) and the time to
    read them all against the physical bound (total weight / 6,000 per minute).

Each fake runs in its own process (``python -m tests.fakes``) and each reader in its own process,
so that neither's CPU or memory is counted for the other. Every temporary directory is removed
by the run that made it (checked at the end).
"""
from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

from tests.bench.common import RUNS, fake_process, leftovers, spread, temp_entries, verdict

ROOT = Path(__file__).resolve().parents[2]
E_SCALE = 20.0
B_READERS = ("plain", "sync", "service", "manager")


def run(*args: str) -> dict:
    out = subprocess.run([sys.executable, "-m", "tests.bench.fetch_worker", *args], cwd=ROOT, check=True,
                         capture_output=True, text=True, timeout=1800)
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_b(runs: int = RUNS, sizes: tuple[int, ...] = (2000, 20000)) -> None:
    before = temp_entries()
    for accounts in sizes:
        results = {reader: [] for reader in B_READERS}
        for i in range(runs):
            order = B_READERS if i % 2 == 0 else B_READERS[::-1]
            with fake_process("kraken", 0.005) as url:
                for reader in order:
                    results[reader].append(run(reader, url, str(accounts)))
        report_b(accounts, runs, results)
    print(f"(b) {leftovers(before)}", flush=True)


def report_b(accounts: int, runs: int, results: dict[str, list[dict]]) -> None:
    def values(reader, key):
        return [r[key] for r in results[reader]]

    def ratios(reader, baseline):
        return [ours["rate"] / theirs["rate"] for ours, theirs in zip(results[reader], results[baseline])]

    print(f"(b) {accounts} accounts, 5 ms latency, 16 in flight, warm pass timed; min / median / max of {runs} runs "
          f"(a loaded, shared 2-core machine: noisy):", flush=True)
    for reader, label in (("plain", "plain ccxt.async_support loop"), ("sync", "threaded sync ccxt, one session")):
        print(f"    {label}: {spread(values(reader, 'rate'), digits=0)} accounts/s, CPU per read "
              f"{spread(values(reader, 'cpu_ms'), digits=3)} ms, peak RSS {spread(values(reader, 'maxrss_mb'), digits=0)} MB, "
              f"errors {sum(values(reader, 'errors'))}")
    for reader, label in (("service", "service (history off)"), ("manager", "manager, history on, clock to written")):
        errors = sum(values(reader, "errors"))
        if errors:  # figures of reads that failed measure nothing: no verdict
            first = next(e for e in values(reader, "first_error") if e)
            print(f"    {label}: INVALID, {errors} failed reads in {runs} warm passes (first: {first!r}); "
                  f"{spread(values(reader, 'rate'), digits=0)} accounts/s, no verdict", flush=True)
            continue
        rss = values(reader, "maxrss_mb")
        cpu = values(reader, "cpu_ms")
        line = (f"    {label}: {spread(values(reader, 'rate'), digits=0)} accounts/s; vs plain "
                f"{spread(ratios(reader, 'plain'))} (goal >= 0.9: {verdict(ratios(reader, 'plain'), 0.9, at_least=True)}); "
                f"vs threaded {spread(ratios(reader, 'sync'))}; CPU per read {spread(cpu, digits=3)} ms "
                f"(goal <= 0.35: {verdict(cpu, 0.35)}; vs plain {spread([c / p for c, p in zip(cpu, values('plain', 'cpu_ms'))])}x); "
                f"peak RSS {spread(rss, digits=0)} MB")
        if accounts >= 20000:
            line += f" (goal <= 250: {verdict(rss, 250)})"
        if reader == "manager":
            line += f"; history written {spread(values(reader, 'history_tail_s'))} s after the last read"
        print(line, flush=True)


def bench_e() -> None:
    accounts = 2000
    flags = ("--enforce-limits", "--time-scale", str(E_SCALE), "--fractional-retry-after", "--no-ip-log")
    with fake_process("binance", 0.0, 0.0, *flags) as url:
        result = run("paced", url, str(accounts), str(E_SCALE))
        with urllib.request.urlopen(url + "/__fake__/limits", timeout=10) as response:
            limits = json.loads(response.read())
    totals = limits["totals"]
    weight = accounts * 20 + 20 + 80            # accounts, exchangeInfo, ticker/24hr without a symbol
    bound = weight / 6000 * 60 / E_SCALE         # real seconds at this scale
    ratio = result["seconds"] / bound
    refusals = totals["throttled"], totals["banned"], totals["rejected"]
    print(f"(e) {accounts} Binance accounts, one address, real limits at time scale {E_SCALE:g} "
          f"(a Binance minute = {60 / E_SCALE:g} s): {refusals[0]} x 429, {refusals[1]} x 418, {refusals[2]} other "
          f"refusals (goal 0: {'PASS' if refusals == (0, 0, 0) else 'MISS'}); {result['errors']} errors; read all in "
          f"{result['seconds']:.1f} s = {result['seconds'] * E_SCALE / 60:.2f} Binance minutes; physical bound "
          f"{bound:.1f} s ({weight} weight / 6000 per minute) -> {ratio:.2f}x (goal <= 1.15: {'PASS' if ratio <= 1.15 else 'MISS'}); "
          f"(the service's own estimate: {result['estimated_round_seconds']} s)", flush=True)


def main(argv: list[str]) -> int:
    for name in argv or ["b", "e"]:
        {"b": bench_b, "e": bench_e}[name]()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
