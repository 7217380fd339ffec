"""The allowed range of every number of the configuration, in one table.

A number outside its range is refused when the configuration is loaded, with the range in the
message (``must be <= 86400, got 1E+400 (allowed: more than 0, at most 86400 seconds)``), so
nothing overflows or misbehaves later (a timeout of 1e400 seconds, a prune job 1e12 days back).
Keys are field paths as documented; ``*`` stands for an exchange id. The bounds are what an
operator could mean, with room to spare: a cache entry lives at most a day, a request waits at
most five minutes, history is kept at most a hundred years.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True)
class Range:
    """``low`` to ``high`` inclusive (``low`` excluded when ``above``); ``whole``: an integer."""

    low: Decimal
    high: Decimal
    unit: str = ""
    above: bool = False
    whole: bool = False

    def describe(self) -> str:
        unit = f" {self.unit}" if self.unit else ""
        if self.above:
            return f"more than {self.low}, at most {self.high}{unit}"
        return f"{self.low} to {self.high}{unit}"

    def problem(self, value: int | Decimal) -> str | None:
        """None when ``value`` is in range, else what is wrong with it (the range included)."""
        if value < self.low or (self.above and value == self.low):
            wrong = f"must be {'>' if self.above else '>='} {self.low}"
        elif value > self.high:
            wrong = f"must be <= {self.high}"
        else:
            return None
        return f"{wrong}, got {shown_number(value)} (allowed: {self.describe()})"


def shown_number(value: int | Decimal) -> str:
    """``value`` as written, shortened when very long (a 4000-digit integer is not worth echoing)."""
    text = str(value)
    return text if len(text) <= 24 else f"{text[:12]}…({len(text)} characters)"


def _r(low, high, unit="", above=False, whole=False) -> Range:
    return Range(Decimal(low), Decimal(high), unit, above, whole)


NUMBER_RANGES: dict[str, Range] = {
    # settings.json
    "cache_ttl_seconds": _r(0, 86400, "seconds", above=True),
    "request_timeout_seconds": _r("0.1", 300, "seconds"),
    "first_read_timeout_seconds": _r("0.1", 3600, "seconds"),
    "retry_backoff_seconds": _r(0, 60, "seconds"),
    "retries": _r(0, 10, whole=True),
    "max_workers": _r(1, 256, whole=True),
    "snapshot_interval_minutes": _r(0, 1440, "minutes", above=True),
    "retention_days": _r(1, 36500, "days"),
    "rate_limits.*.min_interval_seconds": _r(0, 3600, "seconds"),
    "rate_limits.*.public_min_interval_seconds": _r(0, 3600, "seconds"),
    "rate_limits.*.weight_per_minute": _r(0, 10 ** 9, "weight per minute", above=True),
    "fetch.max_response_bytes": _r(1024, 2 ** 31, "bytes", whole=True),
    "fetch.stall_timeout_seconds": _r(1, 3600, "seconds"),
    "metrics.max_user_accounts": _r(0, 1_000_000, whole=True),
    # a paper account's entry in master.json or users/<id>.json
    "brokers.*.balances.*": _r(0, 10 ** 18),
    "brokers.*.prices.*": _r(0, 10 ** 12, "in the base currency", above=True),
    # settings.json alerts (the rule fields also in a user file's alerts)
    "alerts.low_balance": _r(0, 10 ** 15, "in the base currency", above=True),
    "alerts.drop_percent": _r(0, 100, "percent", above=True),
    "alerts.drop_window_minutes": _r(0, 43200, "minutes", above=True),
    "alerts.cooldown_minutes": _r(0, 10080, "minutes"),
    "alerts.hysteresis_percent": _r(0, 50, "percent"),
    "alerts.error_reads": _r(1, 1000, whole=True),
    "alerts.stale_minutes": _r(0, 43200, "minutes", above=True),
    "alerts.webhook_timeout_seconds": _r(0, 60, "seconds", above=True),
    "alerts.webhook_retries": _r(0, 10, whole=True),
    "alerts.webhook_retry_backoff_seconds": _r(0, 300, "seconds"),
    # settings.json web
    "web.rate_limit_per_minute": _r(1, 10 ** 9, whole=True),
    "web.recent_trades": _r(0, 50, whole=True),
    "web.payload_max_age_seconds": _r(0, 3600, "seconds", above=True),
    "web.session_hours": _r(0, 8760, "hours", above=True),
}
