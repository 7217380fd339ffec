"""Account states with freshness (a TTL per entry) and single-flight reads.

An account is *fresh* while its last read (successful or not) is younger than the TTL; after
that its last state is still served while one read refreshes it. `claim` hands out at most one
read per account at a time: concurrent callers of a cold or expiring account share the same
`Flight`, so they cause one exchange call, not many. `wait(flights, timeout)` blocks a caller
until every flight it names has ended (one wake-up, whatever their number).

Readers take no lock. ``_entries`` (account id -> ``(state, fresh_until)``, an immutable pair) is
only ever changed by replacing one key's pair (a single dict assignment, atomic under the
interpreter lock), so `fresh`, `latest`, `latest_of` and `states` read it as it is: a reader
sees each account's previous pair or its new one, never half of one. ``fresh_until`` is the
timer's time plus the TTL at the read's completion (``inf`` for pinned states, ``-inf`` for a
state adopted as not fresh). ``hits`` and ``misses`` are counted by readers without a lock (an
increment may be lost when two threads count at the very same moment: a metric, not a tally).

The same holds for ``_totals`` (owner → ``(sum_known of its accounts' states, the earliest of
their fresh_until)``, for the ``groups`` given): every write of an entry recomputes its owner's
pair before the lock is released, so `fresh_total` answers a user's total with one dict read
while all of its accounts are fresh (the trading loop's call), never from a half-written round.

``_lock`` serialises the writers: it guards ``_inflight`` (account id → `Flight` of the read in
progress), every flight's ``state`` and ``rounds``, and the replacement of ``_entries`` and
``_totals`` pairs (so that a completion and its flight's end are one step for `claim`). Nothing slow happens
while it is held; waiting happens on a `threading.Event` outside it.
"""
from __future__ import annotations

import math
import threading
import time
from typing import Callable, Iterable, Sequence

from bot.core.state import AccountState, sum_known

_NEVER = -math.inf
_ALWAYS = math.inf
MISSING = object()  # `fresh_total`: not every account of the owner is fresh


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
    def __init__(self, ttl_seconds: float, timer=time.monotonic, groups: dict[str, tuple[str, ...]] | None = None):
        """``groups``: owner → its account ids, whose totals `fresh_total` answers."""
        self._lock = threading.Lock()
        self._ttl = ttl_seconds
        self._timer = timer
        self._entries: dict[str, tuple[AccountState, float]] = {}
        self._groups = dict(groups or {})
        self._group_of = {account_id: owner for owner, ids in self._groups.items() for account_id in ids}
        self._totals: dict[str, tuple[object, float]] = {}
        self._inflight: dict[str, Flight] = {}
        self.hits = 0
        self.misses = 0

    def pin(self, state: AccountState) -> None:
        """Store a state that never needs reading (an account with no credentials)."""
        with self._lock:
            self._store_locked(state.account_id, (state, _ALWAYS))

    def _store_locked(self, account_id: str, pair: tuple[AccountState, float]) -> None:
        """Replace the entry of ``account_id`` and its owner's total (``_lock`` held)."""
        entries = self._entries
        entries[account_id] = pair
        owner = self._group_of.get(account_id)
        if owner is None:
            return
        ids = self._groups[owner]
        if len(ids) == 1:  # the usual user: its one account's value
            self._totals[owner] = (pair[0].value, pair[1])
            return
        pairs = [entries.get(i) for i in ids]
        if None in pairs:
            return  # an account never read: no total yet (`fresh_total` misses)
        self._totals[owner] = (sum_known(p[0] for p in pairs), min(p[1] for p in pairs))

    def fresh(self, account_ids: Sequence[str]) -> list[AccountState] | None:
        """The states if every account is fresh (or pinned), else None. The hot path: no lock."""
        now = self._timer()
        get = self._entries.get
        states = []
        for account_id in account_ids:
            entry = get(account_id)
            if entry is None or entry[1] <= now:
                self.misses += 1
                return None
            states.append(entry[0])
        self.hits += 1
        return states

    def fresh_total(self, owner: str):
        """``sum_known`` of the states of ``owner``'s accounts if every one is fresh (or pinned),
        else `MISSING`. The hot path: one dict read, no lock."""
        entry = self._totals.get(owner)
        if entry is None or entry[1] <= self._timer():
            return MISSING
        self.hits += 1
        return entry[0]

    def latest(self, account_id: str) -> AccountState | None:
        entry = self._entries.get(account_id)
        return None if entry is None else entry[0]

    def latest_of(self, account_ids: Iterable[str]) -> dict[str, AccountState | None]:
        """The last state of each account (None if never read)."""
        get = self._entries.get
        return {account_id: (entry := get(account_id)) and entry[0] for account_id in account_ids}

    def claim(self, account_ids: Iterable[str], readable: set[str], force: bool
              ) -> tuple[list[tuple[str, Flight]], dict[str, Flight]]:
        """Reads to start (id, flight) and every read to wait for, by account id.

        Of ``account_ids`` only those in ``readable`` are ever read; an account already being
        read joins that read; otherwise it is read if ``force`` or if it is not fresh. The reads
        to start come in priority order: never read first, then the oldest ``fetched_at``."""
        started, waits = [], {}
        entries = self._entries
        with self._lock:
            now = self._timer()
            for account_id in account_ids:
                if account_id not in readable:
                    continue
                flight = self._inflight.get(account_id)
                if flight is None:
                    if not force and (entry := entries.get(account_id)) is not None and entry[1] > now:
                        continue
                    flight = self._inflight[account_id] = Flight()
                    started.append((account_id, flight))
                waits[account_id] = flight
        started.sort(key=lambda item: _age_key(self.latest(item[0])))
        return started, waits

    def complete(self, state: AccountState) -> None:
        """Record the result of a read and end its flight (its waiters are woken)."""
        with self._lock:
            self._store_locked(state.account_id, (state, self._timer() + self._ttl))
            flight = self._inflight.pop(state.account_id, None)
            woken = self._end_locked(flight, state) if flight is not None else ()
        for event in woken:
            event.set()

    def adopt(self, state: AccountState, fresh: bool) -> AccountState | None:
        """Store a state read by another process (its flights, if any, are left alone): the latest
        state, and a fresh one if ``fresh``. Returns the state it replaces."""
        with self._lock:
            previous = self._entries.get(state.account_id)
            self._store_locked(state.account_id, (state, self._timer() + self._ttl if fresh else _NEVER))
            return None if previous is None else previous[0]

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
        return self.hits, self.misses

    def states(self) -> dict[str, AccountState]:
        """The latest state of every account ever stored."""
        return {account_id: entry[0] for account_id, entry in self._entries.copy().items()}


def _age_key(state: AccountState | None) -> tuple:
    fetched = None if state is None else state.fetched_at
    return (fetched is not None, fetched or 0.0)
