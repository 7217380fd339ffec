"""The operations endpoints, ``/metrics`` and ``/healthz``, written once for every server.

Framework-neutral: each function returns an `OpsResponse` (status, content type, body, extra
headers) that the server copies onto the wire: the headless monitor's tiny HTTP server
(`bot.app.monitor`) and the Flask app (`web.ops`). Who may call them is the server's business
(the web app's /metrics needs an admin unless ``web.public_metrics``); nothing here reads an
exchange.

``/healthz`` (``application/json``, ``Cache-Control: no-store``), one shape for both servers::

    {"status": "ok" | "degraded",
     "scheduler": {"started": bool, "running": bool},
     "store": {"enabled": false}
            | {"enabled": true, "ok": true, "dialect": "sqlite" | "postgresql"}
            | {"enabled": true, "ok": false, "error": "<exception class>"},
     "budget": {"<exchange>": {"round_seconds": int, "ttl_seconds": float
                               [, "paused_until": float, "pause_reason": str]}},
     "readers": {"keys": int, "here": int, "elsewhere": int, "unheld": int}}

``budget`` is there only when an exchange's limits are a concern: one round of its accounts
needs longer than the TTL from one address, or one of its hosts is paused (a 429's Retry-After,
a 418 ban) right now (`BalanceService.budget_report`). It never changes the status.

``readers`` (present when the process shares the store's truth and the configuration has API
keys, `bot.app.truth`): of the configuration's API keys, how many this process reads (holds the
lease of), how many another live process reads, and how many no live process reads. In
distributed mode it adds ``queue_workers`` (live workers of the task queue, one per exchange
queue of each worker process): the keys are read elsewhere while there is one, else unheld.

200 with "ok"; 503 with "degraded" when the store does not answer a trivial query, when the
server expects its scheduler (``scheduler_expected``: the monitor always, the web app when it
started one) and it is not running, or when some key has no live reader (``unheld`` > 0: its
accounts are not being read by anyone). The body never carries an error message (no path, no URL):
the log has it.

``/metrics``: the Prometheus text format (`bot.views.metrics`). Errors (a failed rendering, an
unknown path, a wrong method) are RFC 9457 problem bodies (``application/problem+json``); a 500
says only "Internal Server Error" and the traceback goes to the log.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from http import HTTPStatus

from bot.views.metrics import METRICS_CONTENT_TYPE, render_metrics

log = logging.getLogger(__name__)

JSON = "application/json"
PROBLEM_JSON = "application/problem+json"
NO_STORE = (("Cache-Control", "no-store"),)


@dataclass(frozen=True, slots=True)
class OpsResponse:
    status: int
    content_type: str
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()


def healthz(manager, scheduler_expected: bool) -> OpsResponse:
    """The health of a server built on ``manager`` (see the module docstring for the body)."""
    history = manager.history
    truth = getattr(manager, "truth", None)
    return health(manager.scheduler, None if history is None else history.store, scheduler_expected,
                  budget_concerns(manager), None if truth is None else truth.readers())


def budget_concerns(manager) -> dict:
    """The exchanges of ``manager.service.budget_report()`` whose round exceeds the TTL or whose
    host is paused now (see the module docstring); {} when none, and in distributed mode (the
    workers read, each within its own address's budgets)."""
    service = getattr(manager, "service", None)
    if service is None or not hasattr(service, "budget_report") or service.settings.fetch.distributed:
        return {}
    now, concerns = time.time(), {}
    for exchange, entry in service.budget_report().items():
        paused = entry["paused_until"] > now
        if paused or entry["round_seconds"] > entry["ttl_seconds"]:
            concerns[exchange] = {"round_seconds": entry["round_seconds"], "ttl_seconds": entry["ttl_seconds"],
                                  **({"paused_until": entry["paused_until"], "pause_reason": entry["pause_reason"]}
                                     if paused else {})}
    return concerns


def health(scheduler, store, scheduler_expected: bool, budget: dict | None = None,
           readers: dict | None = None) -> OpsResponse:
    """The health of ``scheduler`` (None: never started), of the history ``store`` (None:
    disabled) and of the key ``readers`` (None: not shared): `healthz`'s body and status."""
    running = bool(scheduler is not None and scheduler.running)
    healthy = running or not scheduler_expected
    if store is None:
        store_health: dict = {"enabled": False}
    else:
        try:
            store.ping()
            store_health = {"enabled": True, "ok": True, "dialect": store.dialect}
        except Exception as exc:
            log.warning("healthz: the store does not answer: %s: %s", type(exc).__name__, exc)
            store_health = {"enabled": True, "ok": False, "error": type(exc).__name__}
            healthy = False
    body = {"status": "ok" if healthy else "degraded",
            "scheduler": {"started": scheduler is not None, "running": running},
            "store": store_health}
    if budget:
        body["budget"] = budget
    if readers is not None and readers["keys"]:
        body["readers"] = readers
        if readers["unheld"]:
            healthy = False
            body["status"] = "degraded"
    return OpsResponse(200 if healthy else 503, JSON, json.dumps(body).encode(), NO_STORE)


def metrics(manager) -> OpsResponse:
    """The metrics of ``manager`` (200), or a 500 problem if rendering them fails (logged)."""
    try:
        body = render_metrics(manager)
    except Exception:
        log.exception("rendering /metrics failed")
        return problem(500, path="/metrics")
    return OpsResponse(200, METRICS_CONTENT_TYPE, body)


def problem(status: int, detail: str | None = None, path: str | None = None,
            headers: tuple[tuple[str, str], ...] = ()) -> OpsResponse:
    """An RFC 9457 problem body (``type`` about:blank) for ``status``; 5xx always say only their phrase."""
    phrase = HTTPStatus(status).phrase
    if status >= 500 or not detail:
        detail = phrase
    body = {"type": "about:blank", "title": phrase, "status": status, "detail": detail, "instance": path}
    return OpsResponse(status, PROBLEM_JSON, json.dumps(body).encode(), headers)
