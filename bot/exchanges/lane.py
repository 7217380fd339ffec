"""Per-key call discipline: one call in flight, spacing from completion, increasing nonces, and
Kraken's call counter.

A `KeyLane` belongs to one API key at one exchange host (or to an endpoint's public calls); every
account and endpoint object using that key shares it. A read holds ``lane.lock`` for all its
calls, so calls of one key never overlap. Before each request `before(cost)` waits until the
previous request of the key *completed* at least ``interval(cost)`` ago (so the exchange sees at
least that gap between arrivals, whatever the latency) and, with a `KeyCounter`, until the key's
modelled counter (+``counter_cost`` a call, decaying at `HEADROOM` of the documented rate, kept
one call below the maximum) has room. ``next_nonce`` is strictly increasing per lane.

A key read by several processes in turn (one at a time: `bot.balances.leases`, or the workers'
turns, `bot.store.fleet`) continues where the previous reader stopped: `continue_from` sets
``nonce_floor`` (every later nonce is above it), ``not_before`` (wall clock: no call before the
previous reader's last call + the spacing) and the carried counter (the previous reader's level
after its last call, decayed at this lane's rate from that call to now; the lane's level is the
higher of its own and the carried one, so continuing never lowers it). ``last_nonce``,
``last_call_at`` (wall clock) and ``last_level`` (the modelled counter when that call completed;
None without a counter or a call) are what the next reader is given; `level` (loop-only) is
the modelled counter now.

Loop-only: every other attribute is touched only on the fetch loop's thread, by the read holding
``lock`` (``refused`` by that read's own answer). ``nonce_floor``, ``not_before``, ``_carried``
(level, lane clock), ``last_nonce``, ``last_call_at`` and ``last_level`` are also read or written
by the lease keeper's thread, as single assignments (atomic; ``last_level`` is written just
before ``last_call_at``); ``_carried`` is written only by `continue_from`, on one thread per
registry (the keeper's, or a worker's loop). Waits are ``asyncio.sleep`` on the loop.
"""
from __future__ import annotations

import asyncio
import time

from bot.exchanges.limits import HEADROOM, KeyCounter

COUNTER_MARGIN = 1.0


class KeyLane:
    __slots__ = ("_lock", "_min_interval", "_rate_limit_s", "_counter", "_decay", "_clock", "_ready_at",
                 "_pending_cost", "last_nonce", "_level", "_stamp", "_backoff", "accounts", "nonce_floor",
                 "not_before", "last_call_at", "last_level", "_carried")

    def __init__(self, min_interval: float | None = None, rate_limit_ms: float = 0.0,
                 counter: KeyCounter | None = None, clock=time.monotonic):
        """``min_interval`` (seconds per call, whatever the cost) wins; else ``rate_limit_ms × cost``."""
        self._lock: asyncio.Lock | None = None
        self._min_interval = min_interval
        self._rate_limit_s = rate_limit_ms / 1000.0
        self._counter = counter
        self._decay = counter.decay_per_second * HEADROOM if counter else 0.0
        self._clock = clock
        self._ready_at = 0.0
        self._pending_cost = 1.0
        self.last_nonce = 0
        self.nonce_floor = 0
        self.not_before = 0.0
        self.last_call_at: float | None = None
        self.last_level: float | None = None
        self._carried: tuple[float, float] | None = None  # another reader's level at a time of _clock
        self._level = 0.0
        self._stamp = 0.0
        self._backoff = 0.0
        self.accounts = 0

    @property
    def lock(self) -> asyncio.Lock:
        """The key's lock, made on first use (a lane per account costs little until it reads)."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        return self._lock

    def interval(self, cost: float | None = None) -> float:
        if self._min_interval is not None:
            return self._min_interval
        return self._rate_limit_s * (1.0 if cost is None else cost)

    def _level_at(self, now: float) -> float:
        level = self._level - self._decay * (now - self._stamp)
        carried = self._carried
        if carried is not None:
            level = max(level, carried[0] - self._decay * (now - carried[1]))
        return max(0.0, level)

    def level(self) -> float | None:
        """The key's modelled counter now (None: no counter)."""
        return None if self._counter is None else self._level_at(self._clock())

    def _counter_ready(self, now: float, cost: float) -> float:
        if self._counter is None:
            return now
        excess = self._level_at(now) + cost - (self._counter.maximum - COUNTER_MARGIN)
        return now if excess <= 0 else now + excess / self._decay

    async def before(self, cost: float | None = None, counter_cost: float = 1.0) -> None:
        """Wait for the key's spacing and counter (lock held), then count the call."""
        while not self.go_now(cost, counter_cost):
            now = self._clock()
            await asyncio.sleep(self._ready(now, counter_cost) - now)

    def go_now(self, cost: float | None = None, counter_cost: float = 1.0) -> bool:
        """`before` without waiting (lock held): count the call and return True if it may go now,
        else count nothing and return False (then await `before`)."""
        now = self._clock()
        if self._ready(now, counter_cost) > now:
            return False
        self._pending_cost = 1.0 if cost is None else cost
        if self._counter is not None:
            self._level, self._stamp = self._level_at(now) + counter_cost, now
        return True

    def _ready(self, now: float, counter_cost: float) -> float:
        return max(self._ready_at, self._counter_ready(now, counter_cost), now + self.not_before - time.time())

    def completed(self) -> None:
        """The request's response (or failure) arrived (lock held)."""
        now = self._clock()
        self._ready_at = max(self._ready_at, now + self.interval(self._pending_cost))
        if self._counter is not None:
            self.last_level = self._level_at(now)
        self.last_call_at = time.time()

    def refused(self, reason: str, backoff_first: float) -> None:
        """The exchange refused this key's call by a per-key limit: with a counter, take it as
        full; else back off (doubling from ``backoff_first`` while refusals repeat)."""
        now = self._clock()
        if self._counter is not None:
            self._level, self._stamp = self._counter.maximum, now
            return
        self._backoff = min(max(backoff_first, 2 * self._backoff), 64.0)
        self._ready_at = max(self._ready_at, now + self._backoff)

    def succeeded(self) -> None:
        self._backoff = 0.0

    def next_nonce(self, candidate: int | float) -> int:
        """``candidate`` (the exchange's own nonce, in its own unit), raised if needed so that it
        is strictly greater than every earlier nonce of this lane (lock held)."""
        nonce = max(int(candidate), self.last_nonce + 1, self.nonce_floor + 1)
        self.last_nonce = nonce
        return nonce

    def continue_from(self, nonce_floor: int | None, last_call_at: float | None,
                      counter_level: float | None = None) -> None:
        """Continue a key another process read: nonces above ``nonce_floor``, the first call
        spaced from ``last_call_at`` (wall clock), the counter at least ``counter_level`` (the
        level right after that call) decayed from then to now. Any may be None (unknown)."""
        if nonce_floor is not None:
            self.nonce_floor = max(self.nonce_floor, int(nonce_floor))
        if last_call_at is not None:
            self.not_before = max(self.not_before, last_call_at + self.interval())
        if counter_level is not None and self._counter is not None:
            now = self._clock()
            ago = 0.0 if last_call_at is None else max(0.0, time.time() - last_call_at)
            level = float(counter_level) - self._decay * ago
            carried = self._carried
            if carried is not None:
                level = max(level, carried[0] - self._decay * (now - carried[1]))
            if level > 0:
                self._carried = (level, now)

    def round_seconds(self) -> float:
        """Estimated seconds for one call of every account sharing this key."""
        per_call = self.interval()
        if self._counter is not None:
            per_call = max(per_call, 1.0 / self._decay)
            burst = max(0.0, self._counter.maximum - COUNTER_MARGIN)
            return max(0.0, self.accounts - burst) * per_call
        return self.accounts * per_call
