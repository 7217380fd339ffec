"""The headless monitor, for operators who run no dashboard.

    python -m bot.monitor [--config DIR] [--metrics-port N] [--metrics-host HOST]

Starts the manager's scheduler (a refresh of every account every ``cache_ttl_seconds``, snapshots
and the daily close at midnight), attaches the monitoring system (alert rules and delivery), and
serves ``GET /metrics`` (see ``bot.views.metrics``) and ``GET /healthz`` on HOST:N (default
127.0.0.1:9478; port 0 picks a free port; the address is logged). Logs go to stderr at INFO.

SIGTERM or SIGINT stops it cleanly: the metrics server, the scheduler (a refresh in progress
finishes), the monitoring system (queued alerts delivered), then the manager (history still
queued is written); exit status 0. A configuration error, or an address that cannot be bound,
prints one line on stderr and exits with status 2.
"""
from __future__ import annotations

import argparse
import json
import logging
import signal
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from bot.app.argparsing import OneLineParser, UsageError
from bot.config import ConfigError, load_config
from bot.views.metrics import METRICS_CONTENT_TYPE, metrics_for, render_metrics
from bot.app.manager import MultiAccountBrokerManager

log = logging.getLogger("bot.monitor")

DEFAULT_PORT = 9478
EXIT_OK, EXIT_USAGE = 0, 2


def parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="python -m bot.monitor", description="Refresh balances, raise alerts, serve /metrics.")
    p.add_argument("--config", metavar="DIR", help="configuration directory (default $BALANCES_CONFIG or ./config)")
    p.add_argument("--metrics-port", type=int, default=DEFAULT_PORT, metavar="N",
                   help=f"port of /metrics (default {DEFAULT_PORT}; 0: any free port)")
    p.add_argument("--metrics-host", default="127.0.0.1", metavar="HOST", help="address to bind (default 127.0.0.1)")
    return p


def attach_monitoring(manager):
    """The manager's monitoring system (alerts), or None when ``bot.alerts.system`` is absent."""
    try:
        from bot.monitoring_system import get_monitoring_system
    except ModuleNotFoundError as exc:
        if exc.name != "bot.alerts.system":
            raise
        log.warning("alerts are off: bot.alerts.system is not installed")
        return None
    system = get_monitoring_system(manager)
    metrics_for(manager).watch_alerts(system)
    return system


def metrics_server(host: str, port: int) -> ThreadingHTTPServer:
    """An HTTP server bound to host:port (raises OSError) answering /metrics and /healthz for
    ``server.manager`` once `serve` starts it."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                try:
                    body = render_metrics(self.server.manager)
                except Exception:
                    log.exception("rendering /metrics failed")
                    self._send(500, b"metrics unavailable, see the log\n", "text/plain; charset=utf-8")
                    return
                self._send(200, body, METRICS_CONTENT_TYPE)
            elif path == "/healthz":
                scheduler = self.server.scheduler
                running = scheduler is not None and scheduler.running
                self._send(200 if running else 503, json.dumps({"scheduler_running": running}).encode(),
                           "application/json")
            else:
                self._send(404, b"not found: try /metrics\n", "text/plain; charset=utf-8")

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format, *args):  # scrapes are not worth a log line each
            pass

    server_class = type("MetricsServer", (ThreadingHTTPServer,), {
        "daemon_threads": True, "address_family": socket.AF_INET6 if ":" in host else socket.AF_INET})
    server = server_class((host, port), Handler)
    server.manager = server.scheduler = None
    return server


def serve(server: ThreadingHTTPServer, manager) -> None:
    server.manager = manager
    threading.Thread(target=server.serve_forever, name="metrics-http", daemon=True).start()


def run(args, stop: threading.Event) -> int:
    try:
        server = metrics_server(args.metrics_host, args.metrics_port)  # a busy port fails before any work
    except OSError as exc:
        print(f"error: cannot serve metrics on {args.metrics_host}:{args.metrics_port}: {exc.strerror or exc}",
              file=sys.stderr)
        return EXIT_USAGE
    try:
        manager = MultiAccountBrokerManager(load_config(args.config))
        manager.open()  # a database that cannot be opened is a configuration error
    except ConfigError as exc:
        server.server_close()
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    monitoring = scheduler = None
    status = EXIT_USAGE
    try:
        metrics_for(manager)  # count every read from the first one
        try:
            monitoring = attach_monitoring(manager)
        except ConfigError as exc:  # normally refused by load_config already
            print(f"error: {exc}", file=sys.stderr)
            return status
        serve(server, manager)
        scheduler = server.scheduler = manager.start_scheduler()
        host, port = server.server_address[:2]
        log.info("monitoring %d accounts, refresh every %g s; metrics on http://%s:%d/metrics",
                 len(manager.config.accounts()), manager.config.settings.cache_ttl_seconds, host, port)
        stop.wait()
        log.info("stopping")
        status = EXIT_OK
    finally:
        if server.manager is not None:
            server.shutdown()
        server.server_close()
        if scheduler is not None:
            scheduler.shutdown()  # waits for a refresh in progress (its reads, their listeners)
        if monitoring is not None:
            monitoring.stop()
        manager.close()
    log.info("stopped")
    return status


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("apscheduler").setLevel(logging.WARNING)  # not a line per job run
    try:
        args = parser().parse_args(argv)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    stop = threading.Event()

    def on_signal(signum, frame):
        log.info("received %s", signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        return run(args, stop)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


