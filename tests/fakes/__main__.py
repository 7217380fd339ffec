"""Run one fake exchange as a process.

    python -m tests.fakes EXCHANGE [--port 0] [--latency S] [--min-interval S]
                                   [--public-min-interval S] [--auto-accounts] [--timeout-delay S]

Prints exactly one line ``READY http://127.0.0.1:PORT`` to stdout (flushed) once serving, then
serves until SIGTERM/SIGINT. Counters are read over HTTP: ``GET /__fake__/stats``,
``POST /__fake__/reset``.
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
    args = parser.parse_args(argv)

    cls = fake_class(args.exchange)
    fake = cls(latency=args.latency, min_interval=args.min_interval,
               public_min_interval=args.public_min_interval, auto_accounts=args.auto_accounts,
               port=args.port)
    if args.timeout_delay is not None:
        fake.timeout_delay = args.timeout_delay
    done = threading.Event()

    def _on_signal(signum, frame):
        done.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    fake.start()
    sys.stdout.write(f"READY {fake.url}\n")
    sys.stdout.flush()
    try:
        while not done.wait(0.5):
            pass
    finally:
        fake.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
