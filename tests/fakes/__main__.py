"""Run one fake exchange as a process.

    python -m tests.fakes EXCHANGE [--port 0] [--latency S] [--min-interval S]
                                   [--public-min-interval S] [--auto-accounts] [--timeout-delay S]
                                   [--enforce-limits] [--time-scale N] [--tier TIER]
                                   [--fractional-retry-after] [--no-ip-log]

Prints exactly one line ``READY http://127.0.0.1:PORT`` to stdout (flushed) once serving, then
serves until SIGTERM/SIGINT. With ``--account``, one account holding ``--balances`` (default
``USD=1000,BTC=0.05``) is created first and its credentials follow as shell lines
(``FAKE_API_KEY=...``, ``FAKE_API_SECRET=...`` and, where the exchange needs one,
``FAKE_PASSPHRASE=...``), ready for a ``.env`` file. Counters are read over HTTP: ``GET /__fake__/stats``,
``POST /__fake__/reset``, ``GET /__fake__/limits``, ``POST /__fake__/reset-limits``; faults are
injected with ``POST /__fake__/inject?fault=F[&api_key=K][&count=N][&public=1]``.
``--enforce-limits``/``--time-scale``/``--tier`` (Kraken only): see tests/fakes/base.py.
"""
from __future__ import annotations

import argparse
import signal
import sys
import threading

from . import fake_class


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fakes", description=__doc__.split("\n")[0])
    parser.add_argument("exchange", help="kraken | binance | okx | coinbase")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--min-interval", type=float, default=0.0)
    parser.add_argument("--public-min-interval", type=float, default=0.0)
    parser.add_argument("--auto-accounts", action="store_true")
    parser.add_argument("--timeout-delay", type=float, default=None)
    parser.add_argument("--enforce-limits", action="store_true")
    parser.add_argument("--time-scale", type=float, default=1.0)
    parser.add_argument("--tier", default=None, help="Kraken: starter | intermediate | pro")
    parser.add_argument("--fractional-retry-after", action="store_true")
    parser.add_argument("--no-ip-log", action="store_true")
    parser.add_argument("--account", action="store_true", help="create one account and print its credentials")
    parser.add_argument("--balances", default="USD=1000,BTC=0.05", help="with --account: ASSET=AMOUNT,...")
    args = parser.parse_args(argv)

    if args.tier and args.exchange.lower() != "kraken":
        parser.error("--tier is for kraken only")
    cls = fake_class(args.exchange)
    extra = {"tier": args.tier} if args.tier else {}
    fake = cls(latency=args.latency, min_interval=args.min_interval,
               public_min_interval=args.public_min_interval, auto_accounts=args.auto_accounts,
               port=args.port, enforce_limits=args.enforce_limits, time_scale=args.time_scale,
               **extra)
    fake.fractional_retry_after = args.fractional_retry_after
    fake.keep_ip_log = not args.no_ip_log
    if args.timeout_delay is not None:
        fake.timeout_delay = args.timeout_delay
    done = threading.Event()

    def _on_signal(signum, frame):
        done.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    fake.start()
    lines = [f"READY {fake.url}"]
    if args.account:
        balances = dict(item.split("=", 1) for item in args.balances.split(",") if item)
        creds = fake.add_account(balances)
        lines += [f"FAKE_API_KEY={creds['api_key']}", f"FAKE_API_SECRET={creds['api_secret']}"]
        if creds.get("passphrase"):
            lines.append(f"FAKE_PASSPHRASE={creds['passphrase']}")
    sys.stdout.write("\n".join(lines) + "\n")
    sys.stdout.flush()
    try:
        while not done.wait(0.5):
            pass
    finally:
        fake.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
