"""Operations endpoints: ``/metrics`` (Prometheus) and ``/healthz``.

``/healthz`` needs no token and says only whether the server, its scheduler and its store work:
200 ``{"status": "ok", ...}``, or 503 ``"degraded"`` when the store does not answer or a
scheduler that was started is not running. ``/metrics`` needs an admin (a bearer token, a
session, or a local caller when no token is configured) unless ``web.public_metrics`` is true; it renders
`bot.views.metrics.render_metrics` (404 if that module is absent).
"""
from __future__ import annotations

import json
import logging

from flask import Blueprint, Response

from web import context, require_principal
from web.problems import ApiProblem

log = logging.getLogger(__name__)

bp = Blueprint("ops", __name__)


@bp.get("/healthz")
def healthz():
    ctx = context()
    manager = ctx.manager
    body = {"status": "ok"}
    scheduler = manager.scheduler
    body["scheduler"] = {"started": scheduler is not None, "running": bool(scheduler and scheduler.running)}
    healthy = not (ctx.scheduler_started and not body["scheduler"]["running"])
    history = manager.history
    if history is None:
        body["store"] = {"enabled": False}
    else:
        try:
            history.store.ping()
            body["store"] = {"enabled": True, "ok": True, "dialect": history.store.dialect}
        except Exception as exc:
            log.warning("healthz: store check failed (%s)", type(exc).__name__)
            body["store"] = {"enabled": True, "ok": False, "error": type(exc).__name__}
            healthy = False
    body["status"] = "ok" if healthy else "degraded"
    return Response(json.dumps(body), status=200 if healthy else 503, mimetype="application/json",
                    headers={"Cache-Control": "no-store"})


@bp.get("/metrics")
def metrics():
    ctx = context()
    if not ctx.web.public_metrics:
        principal = require_principal()
        if not principal.is_admin:
            raise ApiProblem(403, "Metrics need an admin token.")
    try:
        from bot.views.metrics import METRICS_CONTENT_TYPE, render_metrics
    except ImportError:
        raise ApiProblem(404, "Metrics are not available in this installation.") from None
    return Response(render_metrics(ctx.manager), mimetype=None, content_type=METRICS_CONTENT_TYPE)
