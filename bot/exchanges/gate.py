"""Per-credential call discipline: one call in flight, spacing between calls, increasing nonces.

A `CallGate` belongs to one API key on one exchange endpoint (or to an endpoint's public
calls). The reader holds ``gate.lock`` for the whole read, so calls with one key never overlap;
ccxt calls ``throttle(cost)`` before each request and the gate waits until the previous request
of that key *completed* at least ``interval(cost)`` seconds ago (spacing measured from
completion, so the exchange sees at least that gap between arrivals whatever the latency).
``next_nonce()`` is strictly increasing per gate, in the exchange's own nonce unit.

``_ready_at``, ``_pending_cost`` and ``_last_nonce`` are only touched by the thread that holds
``lock``. The waiting happens on fetch worker threads, never on a caller's thread.
"""
from __future__ import annotations

import threading
import time


class CallGate:
    def __init__(self, min_interval: float | None = None, rate_limit_ms: float = 0.0):
        """``min_interval`` (seconds per call, whatever the cost) wins; else ``rate_limit_ms × cost``."""
        self.lock = threading.Lock()
        self._min_interval = min_interval
        self._rate_limit_s = rate_limit_ms / 1000.0
        self._ready_at = 0.0
        self._pending_cost = 1.0
        self._last_nonce = 0

    def interval(self, cost: float | None = None) -> float:
        if self._min_interval is not None:
            return self._min_interval
        return self._rate_limit_s * (1.0 if cost is None else cost)

    def throttle(self, cost: float | None = None) -> None:
        """Called by ccxt before a request (lock held): wait for the spacing to pass."""
        self._pending_cost = 1.0 if cost is None else cost
        delay = self._ready_at - time.monotonic()
        if delay > 0:
            time.sleep(delay)  # a fetch worker thread, holding only this key's gate

    def completed(self) -> None:
        """Called when a request's response (or failure) arrived (lock held)."""
        self._ready_at = time.monotonic() + self.interval(self._pending_cost)

    def next_nonce(self, candidate: int | float) -> int:
        """``candidate`` (the exchange's own nonce, in its own unit), raised if needed so that it
        is strictly greater than every earlier nonce of this gate (lock held)."""
        nonce = max(int(candidate), self._last_nonce + 1)
        self._last_nonce = nonce
        return nonce
