"""The worker of the distributed mode, for each host that reads (`bot.distributed.worker`).

    python -m bot.worker --config DIR [--source-address A] [--concurrency N]

Takes read jobs from the PostgreSQL task queue (``fetch.mode`` must be ``distributed``) and
writes the shared state; logs to stderr at INFO. SIGTERM or SIGINT stops it cleanly: no new job
is taken, the reads in progress finish (at most the read timeout with its retries), exit status
0. A configuration or usage error (an SQLite ``database_url``, a bad ``--source-address``, a
database that cannot be opened) prints one line on stderr and exits with status 2.
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from functools import partial

from bot.app.argparsing import OneLineParser, UsageError, add_source_address, with_source_address
from bot.app.heap import settle_heap
from bot.app.logsetup import add_common_options, configure_logging
from bot.app.manager import open_store
from bot.config import ConfigError, load_config
from bot.distributed.worker import FleetWorker

log = logging.getLogger("bot.worker")

EXIT_OK, EXIT_USAGE = 0, 2


def parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="python -m bot.worker",
                      description="Read balances for the distributed mode (jobs of the PostgreSQL task queue).")
    p.add_argument("--config", metavar="DIR", help="configuration directory (default $BALANCES_CONFIG or ./config)")
    p.add_argument("--concurrency", type=_positive, default=4, metavar="N",
                   help="reads in progress at once per exchange (default 4; the exchange's limits pace them)")
    add_source_address(p)
    add_common_options(p)
    return p


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 1 <= value <= 256:
        raise argparse.ArgumentTypeError(f"must be 1 to 256, got {value}")
    return value


def main(argv: list[str] | None = None, time_scale: float = 1.0, poll_seconds: float | None = None) -> int:
    """Run a worker until SIGTERM / SIGINT; ``time_scale`` and ``poll_seconds`` (how often idle
    queue workers look for jobs; default `bot.distributed.worker.POLL_SECONDS`) are for tests
    against time-scaled fakes."""
    try:
        args = parser().parse_args(argv)
        config = with_source_address(load_config(args.config), args.source_address)
        polling = {} if poll_seconds is None else {"poll_seconds": poll_seconds}
        worker = FleetWorker(config, open_store, concurrency=args.concurrency, time_scale=time_scale, **polling)
    except (UsageError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    configure_logging(args)
    for warning in config.warnings():
        log.warning("%s", warning)

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, partial(_on_signal, sig, stop))
        await worker.run(stop)

    settle_heap()  # the configuration and the modules: never walked by a collection again
    try:
        asyncio.run(serve())
    except ConfigError as exc:  # e.g. the database cannot be opened
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_OK


def _on_signal(sig: signal.Signals, stop: asyncio.Event) -> None:
    log.info("received %s", signal.Signals(sig).name)
    stop.set()
