"""The owner index: every owner's current total, kept up to date from the reads, for the bot's
summaries (`get_user_balance_summary`, `get_all_balances`) without a scan of every state.

`OwnerIndex(view, ttl_seconds, clock)` subscribes to a `StateView` and keeps the latest state of
each account. A read marks its owner dirty; `model()` recomputes only the dirty owners' totals
(`bot.views.model.owner_total`, the read model's one rule) and returns a `ReadModel` that is
reused, ranking included, until some owner changes again. `balances()` is the per-owner
``{broker: value}`` of `get_all_balances`, kept per owner apart from the model (its own dirty
set: it recomputes only the owners read since its last call, and never the totals or the
ranking, so it stays cheap while rounds run).

`due()` says whether the manager must ask for reads before answering (the call that used to
scan every state to find them): an enabled account never read yet, or one whose last read is
older than ``ttl_seconds`` by ``clock`` (the cache's own clock and TTL). Each read schedules its
account's next due time on a heap; `reads_started()` drops the due entries once the manager has
asked for them (so a round in progress is not asked for again at every call) and takes the
view's current states then (a caller may see a read finish before its listener ran).

Locks: ``_lock`` guards ``_states`` (account id -> latest state), ``_dirty`` (owners read since
the last build), ``_dirty_values`` (owners read since the last `balances`), ``_due`` (heap of (due time, account id)), ``_next`` (account id -> its latest
due time: older heap entries are stale) and ``_unread``; it is held only to record a read or to
take a copy, never while computing. ``_build_lock`` serialises `model()` and guards ``_totals``
(owner -> `OwnerTotal`), ``_brokers`` (owner -> {broker: value}, as of ``_model``), ``_model``,
``_values`` and ``_value_brokers`` (owner -> {broker: value}, as of ``_values``).
"""
from __future__ import annotations

import heapq
import threading
import time
from decimal import Decimal
from typing import Callable

from bot.core.state import AccountState
from bot.views.model import OwnerTotal, ReadModel, owner_layout, owner_total, summarize, user_balance_summary


class OwnerIndex:
    def __init__(self, view, ttl_seconds: float, clock: Callable[[], float] = time.monotonic):
        self._view = view
        self._ttl = ttl_seconds
        self._clock = clock
        config = view.config
        self._settings = config.settings
        self._master_layout, self._user_layouts = owner_layout(config)
        layouts = ((self._master_layout,) if self._master_layout is not None else ()) + self._user_layouts
        self._owner_of = {account_id: layout[0] for layout in layouts for account_id in layout[2]}
        self._lock = threading.Lock()
        self._build_lock = threading.Lock()
        self._states: dict[str, AccountState] = {}
        self._dirty: set[str] = {layout[0] for layout in layouts}
        self._dirty_values: set[str] = set(self._dirty)
        self._due: list[tuple[float, str]] = []
        self._next: dict[str, float] = {}
        self._totals: dict[str, OwnerTotal] = {}
        self._brokers: dict[str, dict[str, Decimal | None]] = {}
        self._model: ReadModel | None = None
        self._values: dict | None = None
        self._value_brokers: dict[str, dict[str, Decimal | None]] = {}
        with self._lock:  # listen first, then take what was read before: no read falls between
            self._unsubscribe = view.subscribe(self._on_state)
            for state in view.current_states():
                self._states.setdefault(state.account_id, state)
            self._unread = {a for a in self._owner_of if a not in self._states}

    def close(self) -> None:
        self._unsubscribe()

    def _on_state(self, state: AccountState, previous: AccountState | None, source: str) -> None:
        owner = self._owner_of.get(state.account_id)
        if owner is None:
            return
        due = self._clock() + self._ttl
        with self._lock:
            self._states[state.account_id] = state
            self._dirty.add(owner)
            self._dirty_values.add(owner)
            self._unread.discard(state.account_id)
            self._next[state.account_id] = due
            heapq.heappush(self._due, (due, state.account_id))

    # ------------------------------------------------------------------ reads to ask for

    def due(self) -> bool:
        """Some enabled account was never read, or its last read is older than the TTL."""
        now = self._clock()
        with self._lock:
            if self._unread:
                return True
            heap, latest = self._due, self._next
            while heap and latest.get(heap[0][1]) != heap[0][0]:
                heapq.heappop(heap)  # a later read of that account superseded this entry
            return bool(heap) and heap[0][0] <= now

    def reads_started(self, states: list[AccountState]) -> None:
        """The manager asked for the reads that were due and got ``states`` (the view's current
        ones: a read's caller may return before that read's listener has run): take them, and
        forget the due entries until their accounts are read again."""
        now = self._clock()
        with self._lock:
            for state in states:
                owner = self._owner_of.get(state.account_id)
                if owner is not None and self._states.get(state.account_id) is not state:
                    self._states[state.account_id] = state
                    self._dirty.add(owner)
                    self._dirty_values.add(owner)
                    self._unread.discard(state.account_id)
            heap = self._due
            while heap and heap[0][0] <= now:
                _, account_id = heapq.heappop(heap)
                if self._next.get(account_id, now + 1) <= now:
                    del self._next[account_id]

    # ------------------------------------------------------------------ the summaries

    def model(self) -> ReadModel:
        """The read model of the current states (recomputing only the owners read since the last call)."""
        with self._build_lock:
            with self._lock:
                dirty, self._dirty = self._dirty, set()
                if not dirty and self._model is not None:
                    return self._model
                get = self._states.get
                changed = [(layout, tuple(map(get, layout[2]))) for layout in self._layouts(dirty)]
            for (owner_id, name, _ids, configs), states in changed:
                total = owner_total(owner_id, name, configs, states)
                self._totals[owner_id] = total
                self._brokers[owner_id] = _broker_values(configs, states)
            master = None if self._master_layout is None else self._totals[self._master_layout[0]]
            users = tuple(self._totals[layout[0]] for layout in self._user_layouts)
            self._model = ReadModel(time.time(), self._settings.base_currency, self._settings.timezone, master,
                                    users, summarize(users))
            return self._model

    def _layouts(self, owners: set[str]):
        if self._master_layout is not None and self._master_layout[0] in owners:
            yield self._master_layout
        for layout in self._user_layouts:
            if layout[0] in owners:
                yield layout

    def summary(self) -> dict:
        """`bot.views.model.user_balance_summary` of `model`, from the per-owner broker values kept here."""
        model = self.model()
        with self._build_lock:
            brokers = self._brokers if model is self._model else None
            if brokers is not None:
                model.ranked  # noqa: B018 - computed once per model, under the lock
                return user_balance_summary(model, brokers)
        return user_balance_summary(model)  # a newer model replaced it meanwhile: the plain way

    def balances(self) -> dict:
        """``{"master": {broker: value}, "users": {user_id: {broker: value}}}`` (a new dict each
        call; users without an enabled account left out); values Decimal or None. Recomputes
        only the owners read since the last call (not the model)."""
        with self._build_lock:
            with self._lock:
                dirty, self._dirty_values = self._dirty_values, set()
                get = self._states.get
                changed = [(layout, tuple(map(get, layout[2]))) for layout in self._layouts(dirty)] if dirty else []
            for (owner_id, _name, _ids, configs), states in changed:
                self._value_brokers[owner_id] = _broker_values(configs, states)
            if changed or self._values is None:
                brokers = self._value_brokers
                master = {} if self._master_layout is None else brokers[self._master_layout[0]]
                self._values = {"master": master, "users": {layout[0]: brokers[layout[0]]
                                                            for layout in self._user_layouts if layout[2]}}
            values = self._values
        return {"master": dict(values["master"]), "users": {user: dict(b) for user, b in values["users"].items()}}


def _broker_values(configs, states) -> dict[str, Decimal | None]:
    return {config.broker.name: None if state is None else state.value for config, state in zip(configs, states)}
