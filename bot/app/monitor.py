"""The headless monitor, for operators who run no dashboard.

    python -m bot.monitor [--config DIR] [--metrics-port N] [--metrics-host HOST]

Starts the manager's scheduler (a refresh of every account every ``cache_ttl_seconds``, snapshots
and the daily close at midnight) as a ``reader`` (it takes every API key's lease it can, taking
them over from ``auto`` processes: `bot.app.truth`), attaches the monitoring system (alert rules and delivery), and
serves ``GET /metrics`` and ``GET /healthz`` (`bot.app.ops`: the same bodies as the web app's;
/healthz is 503 until the scheduler runs) on HOST:N (default 127.0.0.1:9478; port 0 picks a free
port; the address is logged). Logs go to stderr at INFO.

In distributed mode (``fetch.mode``, `bot.distributed`) it reads nothing: each round is a job
per account for the workers (``python -m bot.worker``), it gives the jobs of dead workers back
to the queue, and it records the history of what the workers read.

SIGTERM or SIGINT stops it cleanly: the metrics server, the scheduler (a refresh in progress
finishes), the monitoring system (queued alerts delivered), then the manager (history still
queued is written); exit status 0. A configuration error, or an address that cannot be bound,
prints one line on stderr and exits with status 2.
"""
from __future__ import annotations

import argparse
import logging
import signal
import socket
import sys
import threading
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from bot.app import ops
from bot.app.argparsing import OneLineParser, UsageError, add_source_address, with_source_address
from bot.app.heap import settle_heap
from bot.app.logsetup import add_common_options, configure_logging
from bot.app.manager import MultiAccountBrokerManager
from bot.config import ConfigError, load_config
from bot.alerts.system import MonitoringSystem, get_monitoring_system
from bot.views.metrics import metrics_for

log = logging.getLogger("bot.monitor")

DEFAULT_PORT = 9478
EXIT_OK, EXIT_USAGE = 0, 2


def parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="python -m bot.monitor", description="Refresh balances, raise alerts, serve /metrics.")
    p.add_argument("--config", metavar="DIR", help="configuration directory (default $BALANCES_CONFIG or ./config)")
    p.add_argument("--metrics-port", type=int, default=DEFAULT_PORT, metavar="N",
                   help=f"port of /metrics (default {DEFAULT_PORT}; 0: any free port)")
    p.add_argument("--metrics-host", default="127.0.0.1", metavar="HOST", help="address to bind (default 127.0.0.1)")
    add_source_address(p)
    add_common_options(p)
    return p


def attach_monitoring(manager, metrics_url: str | None = None):
    """Attach the monitoring system (alert rules and delivery) to ``manager``; count its alerts
    in the metrics. Alerts sent to Alertmanager name ``metrics_url`` as their generator unless
    ``alerts.generator_url`` is set. Returns the system (stop it before closing the manager)."""
    alerts = manager.config.settings.alerts
    if metrics_url and alerts.generator_url is None:
        system = MonitoringSystem(manager, settings=replace(alerts, generator_url=metrics_url))
    else:
        system = get_monitoring_system(manager)
    metrics_for(manager).watch_alerts(system)
    return system


def metrics_server(host: str, port: int) -> ThreadingHTTPServer:
    """An HTTP server bound to host:port (raises OSError) answering ``GET /metrics`` and
    ``GET /healthz`` (`bot.app.ops`, the same handlers as the web app's) for ``server.manager``
    once `serve` starts it. Other paths get a 404 problem, other methods a 405 problem."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._send(ops.metrics(self.server.manager))
            elif path == "/healthz":
                self._send(ops.healthz(self.server.manager, scheduler_expected=True))
            else:
                self._send(ops.problem(404, "No such resource: try /metrics or /healthz.", path))

        def _refuse(self):
            path = self.path.split("?", 1)[0]
            self._send(ops.problem(405, "This method is not allowed on this resource.", path, (("Allow", "GET"),)))

        do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _refuse

        def _send(self, response: ops.OpsResponse) -> None:
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(response.body)))
            for name, value in response.headers:
                self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(response.body)

        def log_message(self, format, *args):  # scrapes are not worth a log line each
            pass

    server_class = type("MetricsServer", (ThreadingHTTPServer,), {
        "daemon_threads": True, "address_family": socket.AF_INET6 if ":" in host else socket.AF_INET})
    server = server_class((host, port), Handler)
    server.manager = None
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
        manager = MultiAccountBrokerManager(with_source_address(load_config(args.config), args.source_address),
                                            role="reader")  # reads every key it can
        manager.open()  # a database that cannot be opened is a configuration error
    except (ConfigError, UsageError) as exc:
        server.server_close()
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    for warning in manager.config.warnings():
        log.warning("%s", warning)
    monitoring = scheduler = None
    status = EXIT_USAGE
    try:
        metrics_for(manager)  # count every read from the first one
        try:
            host, port = server.server_address[:2]
            shown = socket.gethostname() if host in ("0.0.0.0", "::") else host
            monitoring = attach_monitoring(manager, f"http://{shown}:{port}/metrics")
        except ConfigError as exc:  # normally refused by load_config already
            print(f"error: {exc}", file=sys.stderr)
            return status
        serve(server, manager)
        scheduler = manager.start_scheduler()
        host, port = server.server_address[:2]
        log.info("monitoring %d accounts, refresh every %g s; metrics on http://%s:%d/metrics",
                 len(manager.config.accounts()), manager.config.settings.cache_ttl_seconds, host, port)
        settle_heap()
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
    try:
        args = parser().parse_args(argv)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    configure_logging(args)
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


