"""``python -m web --config DIR --host 127.0.0.1 --port 5000``: serve the app with waitress.

Starts the manager's scheduler once, serves until SIGTERM or SIGINT, then stops waitress, the
scheduler and the manager (queued history is written). With no API token configured
(``$BALANCES_API_TOKENS`` or settings ``web.tokens``) a non-loopback ``--host`` is refused with
one line on stderr and exit status 2, as is a bad configuration.
"""
from __future__ import annotations

import argparse
import ipaddress
import logging
import signal
import socket
import sys

from bot.app.argparsing import OneLineParser, UsageError, add_source_address, with_source_address
from bot.app.heap import settle_heap
from bot.app.logsetup import AtMostEvery, add_common_options, configure_logging
from bot.config import ConfigError, config_directory, load_config
from web.auth import TokenConfigError, is_loopback

log = logging.getLogger("web")


def _parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="python -m web", description="Serve the multibalance dashboard and API.")
    parser.add_argument("--config", help="configuration directory (default $BALANCES_CONFIG or ./config)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=5000, help="port (default 5000; 0 picks a free one)")
    parser.add_argument("--threads", type=int, default=4,
                        help="waitress worker threads (default 4: the GIL makes more no faster on few cores)")
    parser.add_argument("--no-scheduler", action="store_true", help="do not start the background refresh jobs")
    add_source_address(parser)
    add_common_options(parser)
    return parser


def _loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        ipaddress.ip_address(host)
    except ValueError:
        try:
            addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
        except OSError:
            return False
        return bool(addresses) and all(is_loopback(a) for a in addresses)
    return is_loopback(host)


def main(argv: list[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    configure_logging(args)
    # waitress warns once per request queued behind busy threads: under load that is hundreds of
    # lines a second, written under its dispatcher's lock. One line per 10 s says the same.
    queue_log = logging.getLogger("waitress.queue")
    if not any(isinstance(f, AtMostEvery) for f in queue_log.filters):
        queue_log.addFilter(AtMostEvery(10.0))
    from waitress.server import create_server

    from web import close_app, context, create_app

    try:
        if args.source_address is None:
            app = create_app(config_dir=str(config_directory(args.config)), start_scheduler=False)
        else:
            config = with_source_address(load_config(args.config), args.source_address)
            app = create_app(config=config, start_scheduler=False)
    except (ConfigError, TokenConfigError, UsageError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        with app.app_context():
            ctx = context()
        for warning in ctx.manager.config.warnings():
            log.warning("%s", warning)
        if ctx.tokens.empty and not _loopback_host(args.host):
            print(f"error: refusing to listen on {args.host}: no API token is configured (set "
                  f"BALANCES_API_TOKENS or settings web.tokens, or use --host 127.0.0.1)", file=sys.stderr)
            return 2
        try:
            server = create_server(app, host=args.host, port=args.port, threads=args.threads,
                                   ident="multibalance", clear_untrusted_proxy_headers=True)
        except OSError as exc:
            print(f"error: cannot listen on {args.host}:{args.port} ({exc.strerror})", file=sys.stderr)
            return 2
        if not args.no_scheduler:
            ctx.manager.start_scheduler()
            ctx.scheduler_started = True
        def _stop(signum, frame):
            # waitress's run() catches SystemExit: it stops its worker threads (requests in
            # progress get a few seconds) and closes its sockets, then returns.
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            log.info("signal %s: stopping", signal.Signals(signum).name)
            raise SystemExit(0)

        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
        host, port = server.effective_host, server.effective_port
        log.info("serving on http://%s:%s/ (%d tokens configured)", host, port, len(ctx.tokens))
        print(f"listening on http://{host}:{port}/", flush=True)
        settle_heap()
        server.run()
        return 0
    finally:
        close_app(app)
        log.info("stopped")


if __name__ == "__main__":
    sys.exit(main())
