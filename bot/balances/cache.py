"""Account states with freshness (a cachetools TTL cache) and single-flight reads.

An account is *fresh* while its last read (successful or not) is younger than the TTL; after
that its last state is still served while one read refreshes it. `claim` hands out at most one
read per account at a time: concurrent callers of a cold or expiring account share the same
`Future`, so they cause one exchange call, not many.

``_lock`` guards ``_pinned`` (states that are never read), ``_fresh`` (TTLCache: account id → state read within the TTL), ``_latest``
(account id → last state, kept forever) and ``_inflight`` (account id → Future of the read in
progress). Nothing slow happens while it is held.
"""
from __future__ import annotations

import threading
import time
from concurrent.futures import Future
from typing import Iterable, Sequence

from cachetools import TTLCache

from bot.core.state import AccountState


class BalanceCache:
    def __init__(self, ttl_seconds: float, maxsize: int = 1_000_000, timer=time.monotonic):
        self._lock = threading.Lock()
        self._fresh: TTLCache = TTLCache(maxsize=maxsize, ttl=ttl_seconds, timer=timer)
        self._latest: dict[str, AccountState] = {}
        self._inflight: dict[str, Future] = {}
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

    def claim(self, account_ids: Iterable[str], readable: set[str], force: bool
              ) -> tuple[list[tuple[str, Future]], dict[str, Future]]:
        """Reads to start (id, future) and every read to wait for, by account id.

        Of ``account_ids`` only those in ``readable`` are ever read; an account already being
        read joins that read; otherwise it is read if ``force`` or if it is not fresh."""
        started, waits = [], {}
        with self._lock:
            for account_id in account_ids:
                if account_id not in readable:
                    continue
                future = self._inflight.get(account_id)
                if future is None:
                    if not force and account_id in self._fresh:
                        continue
                    future = self._inflight[account_id] = Future()
                    started.append((account_id, future))
                waits[account_id] = future
        return started, waits

    def complete(self, state: AccountState) -> None:
        """Record the result of a read and end its flight (the caller then resolves the future)."""
        with self._lock:
            self._latest[state.account_id] = state
            self._fresh[state.account_id] = state
            self._inflight.pop(state.account_id, None)

    def abandon_inflight(self, failed_state) -> int:
        """End every read still in flight with ``failed_state(account_id)`` (its latest state is
        kept); for a shut-down pool whose queued reads will never run. Returns how many."""
        with self._lock:
            inflight, self._inflight = self._inflight, {}
        for account_id, future in inflight.items():
            if not future.done():
                future.set_result(failed_state(account_id))
        return len(inflight)

    def stats(self) -> tuple[int, int]:
        """(hits, misses) of `fresh` since the cache was made."""
        with self._lock:
            return self.hits, self.misses

    def states(self) -> dict[str, AccountState]:
        """The latest state of every account ever stored."""
        with self._lock:
            return dict(self._latest)
