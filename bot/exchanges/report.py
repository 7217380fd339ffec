"""What the exchanges' limits allow, per exchange: for ``/healthz``, the metrics and the log.

`budget_report(registry, ttl_seconds)` -> {exchange: {"round_seconds", "ttl_seconds", "accounts",
"paused_until", "pause_reason", "throttled": {reason: count}}}. ``round_seconds`` is the estimated
time one round of every account of the exchange takes within its limits (address budgets and
per-key lanes, whichever is slower), rounded up to whole seconds; ``paused_until`` is the latest
pause of any of its hosts (``time.time()``; 0 when never paused). Reads numbers the fetch loop
writes, without waiting for it (each a moment old at worst).
"""
from __future__ import annotations

import math


def budget_report(registry, ttl_seconds: float) -> dict:
    lane_seconds: dict[str, float] = {}
    for exchange, lane in registry.lanes():
        lane_seconds[exchange] = max(lane_seconds.get(exchange, 0.0), lane.round_seconds())
    report: dict[str, dict] = {}
    for budget in registry.budgets():
        entry = report.setdefault(budget.exchange, {"round_seconds": 0, "ttl_seconds": ttl_seconds, "accounts": 0,
                                                    "paused_until": 0.0, "pause_reason": None, "throttled": {}})
        seconds = budget.round_seconds(lane_seconds.get(budget.exchange, 0.0))
        entry["round_seconds"] = max(entry["round_seconds"], math.ceil(seconds))
        entry["accounts"] += budget.accounts
        if budget.paused_until > entry["paused_until"]:
            entry["paused_until"], entry["pause_reason"] = budget.paused_until, budget.pause_reason
        for reason, count in list(budget.throttled.items()):
            entry["throttled"][reason] = entry["throttled"].get(reason, 0) + count
    return report
