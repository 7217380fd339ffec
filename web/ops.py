"""Operations endpoints: ``/metrics`` (Prometheus) and ``/healthz``, served by `bot.app.ops`.

The bodies, status codes and content types are the ones the headless monitor serves (one
handler, one ``/healthz`` shape: see `bot.app.ops`). ``/healthz`` needs no token; it expects a
running scheduler when the app started one. ``/metrics`` needs an admin (a bearer token, a
session, or a local caller when no token is configured) unless ``web.public_metrics`` is true.
"""
from __future__ import annotations

from flask import Blueprint, Response

from bot.app import ops
from web.context import context, require_principal
from web.problems import ApiProblem

bp = Blueprint("ops", __name__)


def _response(answer: ops.OpsResponse) -> Response:
    return Response(answer.body, status=answer.status, content_type=answer.content_type,
                    headers=list(answer.headers))


@bp.get("/healthz")
def healthz():
    ctx = context()
    return _response(ops.healthz(ctx.manager, scheduler_expected=ctx.scheduler_started))


@bp.get("/metrics")
def metrics():
    ctx = context()
    if not ctx.web.public_metrics:
        principal = require_principal()
        if not principal.is_admin:
            raise ApiProblem(403, "Metrics need an admin token.")
    return _response(ops.metrics(ctx.manager))
