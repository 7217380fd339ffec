"""Rate-limit machinery shared by the fakes: per-address (client IP) and per-key budgets.

What a fake enforces is described in ``exchange_limits.py`` (one ``Rules`` class per exchange);
this module holds the budget primitives and the ``Rules`` hooks; ``limit_book.py`` the per-fake
``LimitBook`` (state, counters, logs) and ``LimitsMixin`` (the API every ``FakeExchange`` has).
Summary of that API:

  ``fake.enforce_limits``      False by default. True: refuse requests over the exchange's limits.
                               (Binance counts weight and sends ``X-MBX-USED-WEIGHT(-1M)`` always.)
  ``fake.time_scale``          1.0 by default. N: every exchange duration lasts 1/N real seconds
                               (windows, decay, Retry-After, bans). Limits (counts) are unchanged.
  ``fake.clock``               seconds source of the limits, default ``time.time``; a
                               ``ManualClock`` makes tests deterministic (``clock.advance(s)``).
  ``fake.fractional_retry_after``  False: Retry-After is whole seconds (rounded up, >= 1). True:
                               seconds with 3 decimals (for high time scales).
  ``fake.keep_ip_log``         True: every arrival is logged per address (``ip_log``).
  ``fake.limit_rules``         the exchange's ``Rules`` instance; its attributes are the tables.
  ``fake.limit_stats()``       {"enforce_limits", "time_scale", "totals", "by_reason", "by_ip",
                               "by_key"} (also ``GET /__fake__/limits``).
  ``fake.throttled`` / ``banned`` / ``rejected`` / ``refused`` / ``requests_during_retry_after``
                               totals (ints): 429s, 418s, other refusals, all refusals by a limit,
                               arrivals from an address before its last Retry-After elapsed.
  ``fake.ip_log(ip=None)``     [LimitEvent] in arrival order; ``fake.retry_afters(ip=None)``
                               [RetryAfter] every Retry-After given (429/418) with its deadline.
  ``fake.reset_limits(defaults=False)``  forget budgets, bans, counters and logs (defaults=True
                               also: enforce off, time_scale 1, real clock, default tables);
                               ``POST /__fake__/reset-limits``. ``reset_counters()`` zeroes only
                               the counters and logs (budgets, bans and escalation are kept).

Time: ``t = clock()`` is real seconds; limiters work in exchange seconds ``x = t * time_scale``;
every duration or instant a CLIENT sees (Retry-After, "banned until" in a body) is real time
(already divided by the scale), so a client that honours them literally is right at any scale.

Counters (totals, per address in ``by_ip``): ``accepted`` (passed every limit), ``refused`` (=
``throttled`` 429 + ``banned`` 418 + ``rejected`` other statuses, e.g. Kraken's HTTP 200 errors),
``requests_during_retry_after`` (arrival before the address's last Retry-After deadline, for any
429/418 carrying one, injected faults included), ``requests_during_ban`` (the subset during a
ban), ``bans`` (bans imposed). ``by_reason``: refusals per reason ("ip_weight", "ip_ban",
"ip_rate", "key_rate", "key_counter"). ``by_key``: {api_key: {"refused", ...rule extras}}.
A request refused at the address gate never reaches the exchange pipeline: it is not in
``calls``/``stats()`` and does not touch the key's nonce, spacing or overlap bookkeeping. A
request refused by a per-key limit went through signature and nonce checks and is in ``calls``
(like a spacing breach).

Locking: nothing here has a lock of its own except ``ManualClock``. A fake's ``LimitBook``, the
``AddressState``s and every limiter in it are guarded by that fake's ``lock``; each operation is
O(1) amortised and never blocks (waits happen outside the lock, in the fake).
"""
from __future__ import annotations

import math
import threading
import time
from collections import deque
from typing import Optional

__all__ = ["ManualClock", "WeightWindow", "RateWindow", "DecayingCounter", "Rules",
           "retry_after_value"]


class ManualClock:
    """A clock moved by hand: ``clock()`` -> seconds; ``advance(s)``; ``set(t)``. Guarded by its
    own lock (a leaf lock: it is read under a fake's lock, never takes another)."""

    def __init__(self, start: Optional[float] = None):
        self._now = float(time.time() if start is None else start)
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> float:
        with self._lock:
            self._now += float(seconds)
            return self._now

    def set(self, now: float) -> None:
        with self._lock:
            self._now = float(now)


class WeightWindow:
    """Fixed window aligned on multiples of ``interval`` exchange seconds, as Binance counts
    (a 1-minute window is the current clock minute). Guarded by the owning fake's lock."""
    __slots__ = ("limit", "interval", "index", "used", "peak")

    def __init__(self, limit: int, interval: float = 60.0):
        self.limit, self.interval = limit, float(interval)
        self.index, self.used, self.peak = None, 0, 0

    def _roll(self, x: float) -> None:
        index = math.floor(x / self.interval)
        if self.index is None or index > self.index:   # only forward (a clock set back: kept)
            self.index, self.used = index, 0

    def current(self, x: float) -> int:
        self._roll(x)
        return self.used

    def add(self, weight: int, x: float) -> int:
        """Count ``weight`` (even if it goes over the limit) and return the window's total."""
        self._roll(x)
        self.used += weight
        self.peak = max(self.peak, self.used)
        return self.used

    def resets_in(self, x: float) -> float:
        """Exchange seconds until the current window ends."""
        return (math.floor(x / self.interval) + 1) * self.interval - x


class RateWindow:
    """Sliding window: at most ``limit`` accepted requests in any ``window`` exchange seconds
    (refused ones are not counted). Stricter than a fixed window of the same size, so a client
    that passes it passes either. Guarded by the owning fake's lock."""
    __slots__ = ("limit", "window", "stamps", "peak")

    def __init__(self, limit: int, window: float):
        self.limit, self.window = limit, float(window)
        self.stamps: deque = deque()
        self.peak = 0

    def _prune(self, x: float) -> None:
        while self.stamps and self.stamps[0] <= x - self.window:
            self.stamps.popleft()

    def try_acquire(self, x: float) -> bool:
        self._prune(x)
        if len(self.stamps) >= self.limit:
            return False
        self.stamps.append(x)
        self.peak = max(self.peak, len(self.stamps))
        return True

    def retry_in(self, x: float) -> float:
        """Exchange seconds until one more request would be accepted."""
        self._prune(x)
        return 0.0 if len(self.stamps) < self.limit else self.stamps[0] + self.window - x


class DecayingCounter:
    """Kraken's per-key call counter: every call adds its cost (refused calls too, so a client
    that keeps calling stays limited longer); the counter decays continuously by ``decay`` per
    exchange second down to 0; a call is refused when the counter after adding it is above
    ``maximum``. Guarded by the owning fake's lock."""
    __slots__ = ("maximum", "decay", "level", "stamp", "peak")

    def __init__(self, maximum: float, decay: float):
        self.maximum, self.decay = float(maximum), float(decay)
        self.level, self.stamp, self.peak = 0.0, None, 0.0

    def level_at(self, x: float) -> float:
        if self.stamp is None:
            return 0.0
        return max(0.0, self.level - self.decay * max(0.0, x - self.stamp))

    def add(self, cost: float, x: float) -> bool:
        self.level = self.level_at(x) + cost
        self.stamp = x
        self.peak = max(self.peak, self.level)
        return self.level <= self.maximum + 1e-6   # float time: ~1e-7 s resolution


def retry_after_value(seconds: float, fractional: bool) -> str:
    """The Retry-After header for ``seconds`` (real): whole seconds rounded up (>= 1), or with
    3 decimals when ``fractional``."""
    if fractional:
        return "%.3f" % max(0.001, seconds)
    return str(max(1, math.ceil(seconds - 1e-9)))


class Rules:
    """No limits (the base of ``exchange_limits``' classes). Hooks run with the fake's lock held.
    ``always_on``: run ``ip_gate_locked``/``decorate_locked`` even when limits are not enforced
    (they must then refuse nothing)."""
    always_on = False

    def ip_gate_locked(self, fake, req, kind: str, ip: str, t: float, enforce: bool):
        """Before routing to the exchange pipeline: a Response refuses the request."""
        return None

    def key_gate_locked(self, fake, req, account, t: float):
        """A private request of ``account`` that passed signature and nonce checks."""
        return None

    def decorate_locked(self, fake, req, resp, ip: str, t: float) -> None:
        """Add headers to any response (refused or not)."""

    def address_stats(self, state, x: float) -> dict:
        return {}

    def key_stats(self, limiters: dict, x: float) -> dict:
        return {}
