"""`StateView`: the read-only face of the account states that every view, the history, the
alerts and the metrics depend on (never the manager itself).

A view reads the configuration and the latest state of every account, subscribes to new states,
and reads the cache counters. It cannot start a read: only `bot.app` (the manager facade, the
scheduler) asks for reads. Implementations: `bot.balances.service.BalanceService` (this
process's reads); a store-backed one follows the shared state of other processes.
"""
from __future__ import annotations

from typing import Callable, Protocol

from bot.config import Config
from bot.core.state import AccountState

# listener(new_state, previous_state_or_None, source): called after every read, on the thread
# that completed it; it must be quick (enqueue, count) and must not raise.
StateListener = Callable[[AccountState, "AccountState | None", str], None]


class StateView(Protocol):
    @property
    def config(self) -> Config: ...

    def current_states(self) -> list[AccountState]:
        """The last state of every account that has one, in configuration order; no I/O."""

    def subscribe(self, listener: StateListener) -> Callable[[], None]:
        """Call ``listener`` after every read from now on; returns the function that unsubscribes."""

    def cache_stats(self) -> tuple[int, int]:
        """(hits, misses) of fresh-cache lookups so far."""
