"""The fetch plane's own errors (ccxt's errors are used as they are)."""
from __future__ import annotations

import time
from datetime import datetime, timezone
from zoneinfo import ZoneInfo


class MalformedResponse(Exception):
    """The exchange answered, but not with a usable balance (the message says why: a body over the
    size cap, duplicated JSON keys, a negative or non-numeric amount...)."""


class RateLimited(Exception):
    """The exchange's host is paused (its Retry-After, a ban, a back-off) until ``until``
    (``time.time()`` seconds) longer than this read may wait. Not retried: the budget knows when."""

    def __init__(self, until: float, reason: str, tz: str = "UTC"):
        self.until, self.reason, self.tz = until, reason, tz
        super().__init__(f"until {self.until_text()} ({reason})")

    def until_text(self) -> str:
        try:
            zone = ZoneInfo(self.tz)
        except Exception:  # an unknown zone never hides the error itself
            zone = timezone.utc
        return datetime.fromtimestamp(self.until, zone).strftime("%H:%M:%S")

    def remaining(self, now: float | None = None) -> float:
        return max(0.0, self.until - (time.time() if now is None else now))
