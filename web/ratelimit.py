"""A fixed-window rate limiter: at most ``limit`` requests per key per ``window`` seconds.

A key's window opens with its first request and lasts ``window`` seconds; the next request after
that opens a new one. `hit(key)` counts a request and says whether it is allowed, how many remain
and when the window resets (epoch seconds, as in ``X-RateLimit-Reset``). Expired windows are
swept when the table grows past ``sweep_at`` keys, so random keys cannot grow it without bound
for longer than one window.

Thread-safety: ``_lock`` guards ``_windows`` (key -> [window start, count]); `hit` is atomic.
"""
from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_at: float      # wall-clock epoch seconds when the window ends
    retry_after: int     # whole seconds until then (at least 1)

    def headers(self) -> dict[str, str]:
        return {"X-RateLimit-Limit": str(self.limit), "X-RateLimit-Remaining": str(self.remaining),
                "X-RateLimit-Reset": str(math.ceil(self.reset_at))}


class FixedWindowLimiter:
    def __init__(self, limit: int, window: float = 60.0, clock=time.monotonic, wall=time.time, sweep_at: int = 10_000):
        if limit < 1 or window <= 0:
            raise ValueError("limit must be >= 1 and window > 0")
        self.limit, self.window = limit, window
        self._clock, self._wall, self._sweep_at = clock, wall, sweep_at
        self._lock = threading.Lock()
        self._windows: dict[str, list] = {}

    def hit(self, key: str) -> Decision:
        now = self._clock()
        with self._lock:
            entry = self._windows.get(key)
            if entry is None or now - entry[0] >= self.window:
                if entry is None and len(self._windows) >= self._sweep_at:
                    self._sweep(now)
                entry = self._windows[key] = [now, 0]
            allowed = entry[1] < self.limit
            if allowed:
                entry[1] += 1
            count, start = entry[1], entry[0]
        left = max(0.0, start + self.window - now)
        return Decision(allowed, self.limit, self.limit - count, self._wall() + left, max(1, math.ceil(left)))

    def _sweep(self, now: float) -> None:
        for key in [k for k, (start, _) in self._windows.items() if now - start >= self.window]:
            del self._windows[key]
