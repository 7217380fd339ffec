"""Fetch-plane benchmarks (``make bench``; ``python -m tests.bench fetch`` or ``b e``): print each
figure with its goal and verdict, assert nothing.

(b) 2,000 and 20,000 Kraken accounts, 5 ms latency, no limits: accounts/s of the product's
    `BalanceService` vs a plain ``ccxt.async_support`` loop (one loop, markets shared, the same
    16 requests in flight, kept-alive connections) against the same fake in the same run; CPU per
    read (the warm forced round, user + system time of the reading process); peak RSS.
(e) 2,000 Binance accounts on one address at Binance's real limits (6,000 weight per minute,
    ``/api/v3/account`` 20), every duration scaled 20× (a Binance minute lasts 3 s; the service
    gets the same ``time_scale``): refusals counted by the fake (429, 418, others) and the time to
    read them all against the physical bound (total weight / 6,000 per minute).

Each fake runs in its own process (``python -m tests.fakes``) and each reader in its own process,
so that neither's CPU or memory is counted for the other.
"""
from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

from tests.bench.common import fake_process

ROOT = Path(__file__).resolve().parents[2]
E_SCALE = 20.0


def run(*args: str) -> dict:
    out = subprocess.run([sys.executable, "-m", "tests.bench.fetch_worker", *args], cwd=ROOT, check=True,
                         capture_output=True, text=True, timeout=900)
    return json.loads(out.stdout.strip().splitlines()[-1])


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def bench_b() -> None:
    for accounts in (2000, 20000):
        with fake_process("kraken", 0.005) as url:
            plain = run("plain", url, str(accounts))
            ours = run("service", url, str(accounts))
        ratio = ours["rate"] / plain["rate"]
        print(f"(b) {accounts} accounts, 5 ms latency, 16 in flight: service {ours['rate']:.0f} accounts/s "
              f"(cold {ours['cold_rate']:.0f}/s, {ours['errors']} errors, {ours['ccxt_instances']} ccxt instances), "
              f"plain ccxt.async_support {plain['rate']:.0f}/s -> ratio {ratio:.2f} (goal >= 0.9: {verdict(ratio >= 0.9)}); "
              f"CPU per read {ours['cpu_ms']:.3f} ms vs plain {plain['cpu_ms']:.3f} ms "
              f"(goal <= 0.35: {verdict(ours['cpu_ms'] <= 0.35)}); peak RSS {ours['maxrss_mb']:.0f} MB vs plain "
              f"{plain['maxrss_mb']:.0f} MB" + (f" (goal <= 250: {verdict(ours['maxrss_mb'] <= 250)})"
                                                 if accounts == 20000 else ""), flush=True)


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
          f"refusals (goal 0: {verdict(refusals == (0, 0, 0))}); {result['errors']} errors; read all in "
          f"{result['seconds']:.1f} s = {result['seconds'] * E_SCALE / 60:.2f} Binance minutes; physical bound "
          f"{bound:.1f} s ({weight} weight / 6000 per minute) -> {ratio:.2f}x (goal <= 1.15: {verdict(ratio <= 1.15)}); "
          f"(the service's own estimate: {result['estimated_round_seconds']} s)", flush=True)


def main(argv: list[str]) -> int:
    for name in argv or ["b", "e"]:
        {"b": bench_b, "e": bench_e}[name]()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
