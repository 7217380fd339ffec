"""The request budget of one egress address at one exchange host, shared by every key,
endpoint object and public call of the process.

`AddressBudget` paces calls (`acquire`), never bursting: each call is given the next free slot
of a weight schedule (``weight / rate`` seconds after the previous slot, the rate being
`HEADROOM` of the documented limit); public calls with a public interval go one at a time, each
an interval after the previous one *completed* (so the exchange sees at least that gap between
arrivals, whatever the latency and connection set-up). The
server's own usage header (``X-MBX-USED-WEIGHT-1M``) corrects it: weight the server counted that
this process did not send (another program on the address) moves the schedule back, and usage
near the limit pauses until the exchange's window ends. `observe` reads every answer: a 429 /
rate-limit error pauses the whole host for its Retry-After (else an exponential back-off), a 418
bans it until its Retry-After; each pause is logged once. A read that would wait longer on a
pause than it may gets `RateLimited` instead. ``slots`` bounds the reads in flight at the host
(``settings.max_workers``; a read holds one from borrowing an instance to its prices).

Loop-only: every attribute of a budget is touched only on the fetch loop's thread (no lock), except
that `report` may be read from any thread (single attribute reads of numbers: a moment old at worst).
"""
from __future__ import annotations

import asyncio
import logging
import math
import time
from typing import Mapping

from bot.exchanges.errors import RateLimited
from bot.exchanges.limits import HEADROOM, ExchangeLimits
from bot.exchanges.signals import bybit_exhausted_until, classify, used_weight

log = logging.getLogger(__name__)

BACKOFF_FIRST_SECONDS = 1.0
BACKOFF_MAX_SECONDS = 64.0


class AddressBudget:
    def __init__(self, limits: ExchangeLimits, host: str, address: str | None, concurrency: int,
                 time_scale: float = 1.0, tz: str = "UTC", clock=time.time):
        self.limits = limits
        self.exchange, self.host, self.address = limits.exchange, host, address
        self._clock = clock
        self._tz = tz
        self._rate = limits.paced_rate()
        self._public_spacing = limits.public_interval / HEADROOM if limits.public_interval else None
        self._backoff_first = BACKOFF_FIRST_SECONDS / time_scale
        self._next_slot = 0.0         # when the next weight may go (wall seconds)
        self._public_next = 0.0       # when the next public call may go
        self._public_turn = asyncio.Lock()  # held by the spaced public call in flight
        self.slots = asyncio.Semaphore(concurrency)
        self.paused_until = 0.0
        self.pause_reason: str | None = None
        self._backoff_level = 0
        self.throttled: dict[str, int] = {}
        self._sent: dict[int, float] = {}       # aligned window index -> weight this process sent
        self._corrected: dict[int, float] = {}  # window index -> foreign weight already accounted
        self.accounts = 0                       # accounts reading through this budget (for the estimate)

    # ------------------------------------------------------------------ pacing

    async def acquire(self, weight: float, public: bool, max_wait: float | None) -> None:
        """Wait for this call's slot (in call order). Raises `RateLimited` when the host is paused
        for longer than ``max_wait`` seconds (None: wait however long). A spaced public call
        holds the address's public turn until `public_done` (call it whatever happens)."""
        spaced = public and self._public_spacing is not None
        if not self._rate and not spaced and self.paused_until <= self._clock():
            return  # nothing to pace: no lock, no wait
        if spaced:  # public calls one at a time, spaced from the previous one's completion
            await self._public_turn.acquire()
        try:
            await self._acquire(weight, spaced, max_wait)
        except BaseException:
            if spaced:
                self._public_turn.release()
            raise

    def unpaced(self, public: bool) -> bool:
        """True when a call may go at once without `acquire` (nothing paces it, no pause)."""
        return not self._rate and not (public and self._public_spacing is not None) and self.paused_until <= self._clock()

    @property
    def spaces_public(self) -> bool:
        """True when public calls take turns (`acquire` then `public_done`)."""
        return self._public_spacing is not None

    def public_done(self) -> None:
        """A spaced public call ended (answered or failed): the next may go a spacing later."""
        self._public_next = self._clock() + self._public_spacing
        self._public_turn.release()

    async def _acquire(self, weight: float, spaced: bool, max_wait: float | None) -> None:
        while True:
            await self._wait_pause(max_wait)
            # reserve the slot now (one thread, no await in between: callers are served in call
            # order), then sleep to it; the schedule advances by weight, not by when sleeps end
            now = self._clock()
            slot = max(self._next_slot, now) if self._rate else now
            if spaced:
                slot = max(slot, self._public_next)
            if self._rate:
                self._next_slot = slot + weight / self._rate
                if self.limits.aligned:
                    self._count_sent(slot, weight)
            if slot > now:
                await asyncio.sleep(slot - now)
            if self.paused_until <= self._clock():
                return
            # paused while waiting for the slot: the slot is given up, wait for the pause first

    async def before_send(self, max_wait: float | None) -> None:
        """A call whose slot was given is about to leave: a pause that began since (another call's
        429 / 418 answered meanwhile) is waited out first, or `RateLimited` if longer than
        ``max_wait``, so that nothing is sent during a pause."""
        if self.paused_until > self._clock():
            await self._wait_pause(max_wait)

    def _count_sent(self, at: float, weight: float) -> None:
        index = math.floor(at / self.limits.window_seconds)
        self._sent[index] = self._sent.get(index, 0.0) + weight
        if len(self._sent) > 3:
            for old in sorted(self._sent)[:-3]:
                self._sent.pop(old, None)
                self._corrected.pop(old, None)

    async def _wait_pause(self, max_wait: float | None) -> None:
        while True:
            remaining = self.paused_until - self._clock()
            if remaining <= 0:
                return
            if max_wait is not None and remaining > max_wait:
                raise RateLimited(self.paused_until, self.pause_reason or "paused", self._tz)
            await asyncio.sleep(remaining)

    # ------------------------------------------------------------------ what the server said

    def observe(self, status: int, headers: Mapping[str, str], payload, private: bool, lane=None) -> None:
        """Read one answer's usage header and rate-limit signals (see the module docstring).
        A private call's refusal without Retry-After on an exchange that limits per key pauses
        only ``lane``."""
        now = self._clock()
        self._correct_from_usage(headers, now)
        signal = classify(status, headers, payload)
        if signal is None:
            if status < 400:
                self._backoff_level = 0
            return
        self.throttled[signal.reason] = self.throttled.get(signal.reason, 0) + 1
        if signal.retry_after is None and private and self.limits.private_scope == "key" and lane is not None:
            lane.refused(signal.reason, self._backoff_first)
            return
        seconds = signal.retry_after if signal.retry_after is not None else self._next_backoff()
        self.pause(seconds, signal.reason, now)

    def _next_backoff(self) -> float:
        seconds = min(self._backoff_first * 2 ** self._backoff_level, BACKOFF_MAX_SECONDS)
        self._backoff_level += 1
        return seconds

    def pause(self, seconds: float, reason: str, now: float | None = None) -> None:
        """No call to this host before ``seconds`` from now; logged once per pause."""
        now = self._clock() if now is None else now
        until = now + seconds
        if until <= self.paused_until:
            return
        fresh = self.paused_until <= now
        self.paused_until, self.pause_reason = until, reason
        if fresh:
            log.warning("%s: %s paused for %.1f s (%s): no call from %s until then", self.exchange, self.host,
                        seconds, reason, self.address or "the default address")

    def _correct_from_usage(self, headers: Mapping[str, str], now: float) -> None:
        limits = self.limits
        if limits.usage_header == "X-Bapi-Limit-Status":
            until = bybit_exhausted_until(headers)
            if until is not None and until > now:
                self.pause(until - now, "usage", now)
            return
        if limits.usage_header is None or not self._rate:
            return
        used = used_weight(headers, limits.usage_header)
        if used is None:
            return
        window = limits.window_seconds
        if limits.aligned:
            index = math.floor(now / window)
            foreign = used - self._sent.get(index, 0.0)
            done = self._corrected.get(index, 0.0)
            if foreign > done:  # weight someone else spent in this window: ours moves back
                self._corrected[index] = foreign
                self._next_slot = max(self._next_slot, now) + (foreign - done) / self._rate
            if used >= limits.weight_limit * (1 + HEADROOM) / 2:
                self.pause((index + 1) * window - now, "usage", now)

    # ------------------------------------------------------------------ figures

    def round_seconds(self, lane_seconds: float = 0.0) -> float:
        """Estimated seconds one round of every account on this budget takes."""
        seconds = lane_seconds
        if self._rate:
            weight = self.accounts * self.limits.read_weight + self.limits.round_public_weight
            seconds = max(seconds, weight / self._rate)
        return seconds

    def report(self) -> dict:
        return {"host": self.host, "address": self.address, "paused_until": self.paused_until,
                "pause_reason": self.pause_reason, "throttled": dict(self.throttled)}
