"""A settable clock for tests: TTLs (monotonic seconds) and alert windows (epoch seconds)."""
from __future__ import annotations

import time


class Clock:
    """Call it for the time; move it with `advance`. Starts at ``now`` (default 1000.0; pass
    ``time.time()`` where epoch seconds matter)."""

    def __init__(self, now: float = 1000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float = 0.0, minutes: float = 0.0) -> None:
        self.now += seconds + minutes * 60

    @classmethod
    def wall(cls) -> Clock:
        """A clock starting at the real epoch time."""
        return cls(time.time())
