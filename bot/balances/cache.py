"""Account states with freshness (a cachetools TTL cache) and single-flight reads.

An account is *fresh* while its last read (successful or not) is younger than the TTL; after
that its last state is still served while one read refreshes it. `claim` hands out at most one
read per account at a time: concurrent callers of a cold or expiring account share the same
`Flight`, so they cause one exchange call, not many. `wait(flights, timeout)` blocks a caller
until every flight it names has ended (one wake-up, whatever their number).

``_lock`` guards ``_pinned`` (states that are never read), ``_fresh`` (TTLCache: account id →
state read within the TTL), ``_latest`` (account id → last state, kept forever), ``_inflight``
(account id → `Flight` of the read in progress) and every flight's ``state`` and ``rounds``.
Nothing slow happens while it is held; waiting happens on a `threading.Event` outside it.
"""
from __future__ import annotations

import threading
import time
from typing import Callable, Iterable, Sequence

from cachetools import TTLCache

from bot.core.state import AccountState


class Flight:
    """One read in progress. ``state`` is set once, by `BalanceCache.complete` (lock held)."""

    __slots__ = ("state", "rounds")

    def __init__(self):
        self.state: AccountState | None = None
        self.rounds: list | None = None  # [_Round] waiting for this flight

    def done(self) -> bool:
        return self.state is not None

    def result(self) -> AccountState | None:
        return self.state


class _Round:
    """A caller waiting for ``left`` flights; ``event`` is set when the last one ends."""

    __slots__ = ("left", "event")

    def __init__(self, left: int):
        self.left = left
        self.event = threading.Event()


class BalanceCache:
    def __init__(self, ttl_seconds: float, maxsize: int = 1_000_000, timer=time.monotonic):
        self._lock = threading.Lock()
        self._fresh: TTLCache = TTLCache(maxsize=maxsize, ttl=ttl_seconds, timer=timer)
        self._latest: dict[str, AccountState] = {}
        self._inflight: dict[str, Flight] = {}
        self._pinned: dict[str, AccountState] = {}
        self.hits = 0
        self.misses = 0

    def pin(self, state: AccountState) -> None:
        """Store a state that never needs reading (an account with no credentials)."""
        with self._lock:
            self._latest[state.account_id] = state
            self._pinned[state.account_id] = state

    def fresh(self, account_ids: Sequence[str]) -> list[AccountState] | None:
        """The states if every account is fresh (or pinned), else None. The hot path."""
        with self._lock:
            get = self._fresh.get
            states = []
            for account_id in account_ids:
                state = get(account_id) or self._pinned.get(account_id)
                if state is None:
                    self.misses += 1
                    return None
                states.append(state)
            self.hits += 1
            return states

    def latest(self, account_id: str) -> AccountState | None:
        with self._lock:
            return self._latest.get(account_id)

    def latest_of(self, account_ids: Iterable[str]) -> dict[str, AccountState | None]:
        """The last state of each account (None if never read), under one lock."""
        with self._lock:
            return {account_id: self._latest.get(account_id) for account_id in account_ids}

    def claim(self, account_ids: Iterable[str], readable: set[str], force: bool
              ) -> tuple[list[tuple[str, Flight]], dict[str, Flight]]:
        """Reads to start (id, flight) and every read to wait for, by account id.

        Of ``account_ids`` only those in ``readable`` are ever read; an account already being
        read joins that read; otherwise it is read if ``force`` or if it is not fresh. The reads
        to start come in priority order: never read first, then the oldest ``fetched_at``."""
        started, waits = [], {}
        with self._lock:
            for account_id in account_ids:
                if account_id not in readable:
                    continue
                flight = self._inflight.get(account_id)
                if flight is None:
                    if not force and account_id in self._fresh:
                        continue
                    flight = self._inflight[account_id] = Flight()
                    started.append((account_id, flight))
                waits[account_id] = flight
            latest = self._latest
            started.sort(key=lambda item: _age_key(latest.get(item[0])))
        return started, waits

    def complete(self, state: AccountState) -> None:
        """Record the result of a read and end its flight (its waiters are woken)."""
        with self._lock:
            self._latest[state.account_id] = state
            self._fresh[state.account_id] = state
            flight = self._inflight.pop(state.account_id, None)
            woken = self._end_locked(flight, state) if flight is not None else ()
        for event in woken:
            event.set()

    def adopt(self, state: AccountState, fresh: bool) -> AccountState | None:
        """Store a state read by another process (its flights, if any, are left alone): the latest
        state, and a fresh one if ``fresh``. Returns the state it replaces."""
        with self._lock:
            previous = self._latest.get(state.account_id)
            self._latest[state.account_id] = state
            if fresh:
                self._fresh[state.account_id] = state
            else:
                self._fresh.pop(state.account_id, None)
            return previous

    @staticmethod
    def _end_locked(flight: Flight, state: AccountState) -> list:
        flight.state = state
        woken = []
        for waiting in flight.rounds or ():
            waiting.left -= 1
            if waiting.left == 0:
                woken.append(waiting.event)
        flight.rounds = None
        return woken

    def wait(self, flights: Iterable[Flight], timeout: float) -> None:
        """Block until every flight of ``flights`` has ended, at most ``timeout`` seconds."""
        with self._lock:
            pending = [f for f in flights if f.state is None]
            if not pending:
                return
            waiting = _Round(len(pending))
            for flight in pending:
                if flight.rounds is None:
                    flight.rounds = []
                flight.rounds.append(waiting)
        waiting.event.wait(timeout)

    def abandon_inflight(self, failed_state: Callable[[str], AccountState]) -> int:
        """End every read still in flight with ``failed_state(account_id)`` (its latest state is
        kept); for a closed service whose queued reads will never run. Returns how many."""
        with self._lock:
            inflight, self._inflight = self._inflight, {}
        failed = {account_id: failed_state(account_id)  # may read this cache: not under the lock
                  for account_id, flight in inflight.items() if flight.state is None}
        woken = []
        with self._lock:
            for account_id, state in failed.items():
                if inflight[account_id].state is None:
                    woken += self._end_locked(inflight[account_id], state)
        for event in woken:
            event.set()
        return len(inflight)

    def stats(self) -> tuple[int, int]:
        """(hits, misses) of `fresh` since the cache was made."""
        with self._lock:
            return self.hits, self.misses

    def states(self) -> dict[str, AccountState]:
        """The latest state of every account ever stored."""
        with self._lock:
            return dict(self._latest)


def _age_key(state: AccountState | None) -> tuple:
    fetched = None if state is None else state.fetched_at
    return (fetched is not None, fetched or 0.0)
