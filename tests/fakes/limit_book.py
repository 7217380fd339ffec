"""The per-fake state of the rate limits (``LimitBook``) and their API (``LimitsMixin``).

See ``limits.py`` for the contract (flags, counters, time scaling) and ``exchange_limits.py`` for
each exchange's rules. Locking: a ``LimitBook`` and every ``AddressState`` and limiter in it are
guarded by the owning fake's ``lock``; ``dispatch`` takes it twice per request (before and after
the exchange pipeline) and never waits while holding it.
"""
from __future__ import annotations

import math
import time
from typing import Callable, NamedTuple, Optional

from .limits import Rules, retry_after_value

__all__ = ["COUNTERS", "LimitEvent", "RetryAfter", "AddressState", "LimitBook", "LimitsMixin"]

COUNTERS = ("accepted", "refused", "throttled", "banned", "rejected",
            "requests_during_retry_after", "requests_during_ban", "bans")


class LimitEvent(NamedTuple):
    """One arrival at a fake with limits enforced. ``time``: the limits clock (real seconds);
    ``status``: HTTP status answered; ``refused_by``: the limit reason, or None if accepted."""
    time: float
    ip: str
    kind: str
    path: str
    api_key: Optional[str]
    status: int
    refused_by: Optional[str]


class RetryAfter(NamedTuple):
    """A Retry-After given to ``ip`` at ``issued``; arrivals before ``until`` are violations."""
    ip: str
    issued: float
    until: float
    status: int


class AddressState:
    """Everything one client address has at one fake (guarded by the fake's lock)."""
    __slots__ = ("counts", "limiters", "retry_after_until", "banned_until", "ban_count")

    def __init__(self):
        self.counts = dict.fromkeys(COUNTERS, 0)
        self.limiters: dict = {}
        self.retry_after_until = float("-inf")
        self.banned_until = float("-inf")
        self.ban_count = 0


class LimitBook:
    """Budgets, bans, counters and logs of one fake (guarded by the fake's ``lock``).

    Request notes the rules may set (``Request`` slots): ``refused_by`` (set by ``refuse``),
    ``armed`` (True: the rule already armed the address's Retry-After deadline, so the header of
    the response is not re-read), ``limit_note`` (free: carried from a gate to
    ``decorate_locked``, e.g. Binance's used weight)."""

    def __init__(self, time_scale: float = 1.0, clock: Optional[Callable[[], float]] = None):
        self.time_scale = time_scale
        self.clock = clock or time.time
        self.fractional_retry_after = False
        self.keep_ip_log = True
        self.reset()

    @property
    def time_scale(self) -> float:
        return self._time_scale

    @time_scale.setter
    def time_scale(self, value: float) -> None:
        value = float(value)
        if not value > 0:
            raise ValueError("time_scale must be > 0")
        self._time_scale = value

    def reset(self) -> None:
        self.addresses: dict[str, AddressState] = {}
        self.keys: dict[str, dict] = {}
        self.reset_counters()

    def reset_counters(self) -> None:
        self.totals = dict.fromkeys(COUNTERS, 0)
        self.by_reason: dict[str, int] = {}
        self.key_refused: dict[str, int] = {}
        self.log: list[LimitEvent] = []
        self.retry_log: list[RetryAfter] = []
        for state in getattr(self, "addresses", {}).values():
            state.counts = dict.fromkeys(COUNTERS, 0)

    # ------------------------------------------------------------------ helpers (lock held)
    def address(self, ip: str) -> AddressState:
        state = self.addresses.get(ip)
        if state is None:
            state = self.addresses[ip] = AddressState()
        return state

    def limiter(self, owner: dict, name, factory: Callable):
        found = owner.get(name)
        if found is None:
            found = owner[name] = factory()
        return found

    def key_limiters(self, api_key: str) -> dict:
        found = self.keys.get(api_key)
        if found is None:
            found = self.keys[api_key] = {}
        return found

    def count(self, state: AddressState, name: str, n: int = 1) -> None:
        state.counts[name] += n
        self.totals[name] += n

    def retry_after(self, seconds: float) -> str:
        return retry_after_value(seconds, self.fractional_retry_after)

    def refuse(self, req, reason: str, status: int, api_key: Optional[str] = None) -> None:
        """Count a refusal by a limit (the caller builds the Response)."""
        state = self.address(req.client_ip)
        req.refused_by = reason
        self.count(state, "refused")
        self.count(state, {429: "throttled", 418: "banned"}.get(status, "rejected"))
        self.by_reason[reason] = self.by_reason.get(reason, 0) + 1
        if api_key is not None:
            self.key_refused[api_key] = self.key_refused.get(api_key, 0) + 1

    def arm(self, ip: str, t: float, until: float, status: int) -> None:
        """``ip`` was told to wait until ``until`` (real clock)."""
        state = self.address(ip)
        state.retry_after_until = max(state.retry_after_until, until)
        self.retry_log.append(RetryAfter(ip, t, until, status))

    def ban(self, ip: str, t: float, seconds: float) -> float:
        state = self.address(ip)
        state.banned_until = t + seconds
        state.ban_count += 1
        self.count(state, "bans")
        return state.banned_until

    # ------------------------------------------------------------------ the request path
    def dispatch(self, fake, req, kind: str, handler):
        """Route ``req`` through the fake's rules around its usual pipeline (``_routed``)."""
        rules, enforce = fake.limit_rules, fake.enforce_limits
        if not enforce and not rules.always_on:
            return fake._routed(req, kind, handler)
        ip = req.client_ip
        with fake.lock:
            t = self.clock()
            if enforce:
                state = self.address(ip)
                if t < state.retry_after_until:
                    self.count(state, "requests_during_retry_after")
                if t < state.banned_until:
                    self.count(state, "requests_during_ban")
            refusal = rules.ip_gate_locked(fake, req, kind, ip, t, enforce)
        if refusal is not None:
            fake._wait(fake.latency)
            resp = refusal
        else:
            resp = fake._routed(req, kind, handler)
        with fake.lock:
            rules.decorate_locked(fake, req, resp, ip, t)
            if enforce:
                self._after_locked(fake, req, kind, resp, ip, t)
        return resp

    def _after_locked(self, fake, req, kind, resp, ip, t) -> None:
        state = self.address(ip)
        if req.refused_by is None:
            self.count(state, "accepted")
        headers = resp.headers or {}
        if resp.status in (418, 429) and "Retry-After" in headers and not req.armed:
            try:
                seconds = float(headers["Retry-After"])
            except ValueError:
                seconds = None
            if seconds is not None:
                now = self.clock()
                self.arm(ip, now, now + seconds, resp.status)
        if self.keep_ip_log:
            api_key = fake.extract_key(req) if kind == "private" else None
            self.log.append(LimitEvent(t, ip, kind, req.path, api_key, resp.status,
                                       req.refused_by))

    # ------------------------------------------------------------------ reading
    def stats(self, rules: Rules, enforce: bool) -> dict:
        x = self.clock() * self.time_scale
        by_ip = {}
        for ip, state in self.addresses.items():
            row = dict(state.counts, ban_count=state.ban_count,
                       retry_after_until=_finite(state.retry_after_until),
                       banned_until=_finite(state.banned_until))
            row.update(rules.address_stats(state, x))
            by_ip[ip] = row
        by_key = {}
        for key in set(self.keys) | set(self.key_refused):
            by_key[key] = {"refused": self.key_refused.get(key, 0),
                           **rules.key_stats(self.keys.get(key, {}), x)}
        return {"enforce_limits": enforce, "time_scale": self.time_scale,
                "totals": dict(self.totals), "by_reason": dict(self.by_reason),
                "by_ip": by_ip, "by_key": by_key}


def _finite(value: float):
    return value if math.isfinite(value) else None


class LimitsMixin:
    """The limits API of ``FakeExchange`` (see the module docstring). Needs ``self.lock``,
    ``self.limits`` (LimitBook), ``self.limit_rules`` and ``self.enforce_limits``."""

    @property
    def time_scale(self) -> float:
        return self.limits.time_scale

    @time_scale.setter
    def time_scale(self, value: float) -> None:
        with self.lock:
            self.limits.time_scale = value

    @property
    def clock(self) -> Callable[[], float]:
        return self.limits.clock

    @clock.setter
    def clock(self, value: Optional[Callable[[], float]]) -> None:
        with self.lock:
            self.limits.clock = value or time.time

    @property
    def fractional_retry_after(self) -> bool:
        return self.limits.fractional_retry_after

    @fractional_retry_after.setter
    def fractional_retry_after(self, value: bool) -> None:
        self.limits.fractional_retry_after = bool(value)

    @property
    def keep_ip_log(self) -> bool:
        return self.limits.keep_ip_log

    @keep_ip_log.setter
    def keep_ip_log(self, value: bool) -> None:
        self.limits.keep_ip_log = bool(value)

    def limit_stats(self) -> dict:
        with self.lock:
            return self.limits.stats(self.limit_rules, self.enforce_limits)

    def _total(self, name: str) -> int:
        with self.lock:
            return self.limits.totals[name]

    throttled = property(lambda self: self._total("throttled"), doc="429s sent by a limit")
    banned = property(lambda self: self._total("banned"), doc="418s sent (bans)")
    rejected = property(lambda self: self._total("rejected"), doc="other refusals by a limit")
    refused = property(lambda self: self._total("refused"), doc="all refusals by a limit")
    requests_during_retry_after = property(
        lambda self: self._total("requests_during_retry_after"),
        doc="arrivals from an address before its last Retry-After elapsed")

    def ip_log(self, ip: Optional[str] = None) -> list:
        with self.lock:
            return [e for e in self.limits.log if ip is None or e.ip == ip]

    def retry_afters(self, ip: Optional[str] = None) -> list:
        with self.lock:
            return [r for r in self.limits.retry_log if ip is None or r.ip == ip]

    def reset_limits(self, defaults: bool = False) -> None:
        with self.lock:
            self.limits.reset()
            if defaults:
                self.enforce_limits = False
                self.limits.time_scale = 1.0
                self.limits.clock = time.time
                self.limits.fractional_retry_after = False
                self.limits.keep_ip_log = True
                self.limit_rules = self.new_limit_rules()

    def new_limit_rules(self) -> Rules:
        cls = getattr(self, "limit_rules_class", None)
        return cls() if cls is not None else Rules()
