"""`SharedStates`: the `StateView` of the account states every process on the store wrote.

It keeps the ``account_states`` rows (`bot.store.shared`) of the configuration's accounts in
memory — `current_states` answers from there, with no I/O — and one thread follows the store's
change feed (`bot.store.changes`: SQLite ``PRAGMA data_version`` twice a second, PostgreSQL
``LISTEN``): when another process committed, the rows written since the newest one seen (less
the overlap) are reloaded, and every row whose (version, reader, updated_at) changed is handed to
the subscribers (``listener(row, previous_row)``; `subscribe` gives the `StateView` form,
source ``followed``). A new state is seen within about 1 s of its commit. The rows this
process wrote itself (``own_reader``, its identity) are never reloaded: its service has them.
New round requests (`TruthStore.request_round`) go to the ``on_rounds`` callback. `wait_read_since` lets a caller
wait for states whose reads began after a given instant.

Locks: ``_lock`` (and ``_changed``, its condition) guards ``_rows`` (account id → `SharedState`),
``_watermark`` and ``_last_request``; ``_listeners_lock`` guards ``_listeners`` (a tuple,
replaced). Listeners run on the follower's thread (and, for the first load, on the thread that
calls `start`), outside both locks; they must be quick and must not raise.
"""
from __future__ import annotations

import logging
import threading
from datetime import datetime
from typing import Callable, Iterable

from bot.core.sources import FOLLOWED
from bot.core.state import AccountState
from bot.store.truth import RoundRequest, SharedState, TruthStore

log = logging.getLogger(__name__)

SAFETY_RELOAD_SECONDS = 5.0  # PostgreSQL: reload this often anyway (a notification lost in a reconnect)
RowListener = Callable[[SharedState, "SharedState | None"], None]


class SharedStates:
    def __init__(self, truth: TruthStore, config, own_reader: str | None = None):
        self.config = config
        self._truth = truth
        self._own_reader = own_reader
        self._order = tuple(a.account_id for a in config.accounts())
        self._known = frozenset(self._order)
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._rows: dict[str, SharedState] = {}
        self._watermark: datetime | None = None
        self._last_request = 0
        self._listeners_lock = threading.Lock()
        self._listeners: tuple[RowListener, ...] = ()
        self.on_rounds: Callable[[list[RoundRequest]], None] | None = None
        self._feed = truth.change_feed()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ StateView

    def current_states(self) -> list[AccountState]:
        """The shared state of every account that has one, in configuration order; no I/O."""
        with self._lock:
            rows = self._rows
            return [rows[i].state for i in self._order if i in rows]

    def subscribe(self, listener) -> Callable[[], None]:
        """`StateView.subscribe`: ``listener(state, previous_state, "followed")`` for each change."""
        return self.subscribe_rows(lambda row, old: listener(row.state, None if old is None else old.state, FOLLOWED))

    def cache_stats(self) -> tuple[int, int]:
        return 0, 0

    # ------------------------------------------------------------------ rows

    def subscribe_rows(self, listener: RowListener) -> Callable[[], None]:
        """Call ``listener(row, previous_row)`` for every row that changes from now on (and for
        every row of the first load, when subscribed before `start`)."""
        with self._listeners_lock:
            self._listeners += (listener,)

        def unsubscribe() -> None:
            with self._listeners_lock:
                self._listeners = tuple(x for x in self._listeners if x is not listener)
        return unsubscribe

    def row(self, account_id: str) -> SharedState | None:
        with self._lock:
            return self._rows.get(account_id)

    def outdated(self, account_id: str, ttl_seconds: float) -> bool:
        """Whether the account has no shared state, or one at least ``ttl_seconds`` old."""
        row = self.row(account_id)
        age = None if row is None else row.state.age_seconds()
        return age is None or age >= ttl_seconds

    def wait_read_since(self, account_ids: Iterable[str], since: datetime, timeout: float) -> bool:
        """Wait until every one of ``account_ids`` has a state whose read began at or after
        ``since``, at most ``timeout`` seconds; True if they all have."""
        ids = tuple(account_ids)

        def read() -> bool:
            return all((row := self._rows.get(i)) is not None and row.read_started_at is not None
                       and row.read_started_at >= since for i in ids)
        with self._changed:
            return self._changed.wait_for(read, timeout=max(0.0, timeout))

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> SharedStates:
        """Open the change feed, load every row (listeners called), then follow on a thread."""
        self._feed.prime()
        last_request = self._truth.last_round_request()
        self._reload(full=True)
        with self._lock:
            self._last_request = last_request
        self._thread = threading.Thread(target=self._run, name="shared-states", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._feed.close()

    def _run(self) -> None:
        postgresql = self._truth.dialect == "postgresql"
        while not self._stop.is_set():
            changed = self._feed.wait(self._stop, SAFETY_RELOAD_SECONDS)
            if self._stop.is_set():
                return
            if not (changed or postgresql):
                continue
            try:
                self._reload()
                self._poll_rounds()
            except Exception as exc:
                log.warning("shared state: reloading failed (%s: %s)", type(exc).__name__, exc)
                self._stop.wait(1.0)

    def _reload(self, full: bool = False) -> None:
        with self._lock:
            since = None if full else self._watermark
        rows = self._truth.states(since, self._own_reader)
        changes = []
        with self._lock:
            for row in rows:
                account_id = row.state.account_id
                if account_id not in self._known:
                    continue
                old = self._rows.get(account_id)
                if old is None or (old.version, old.reader, old.updated_at) != (row.version, row.reader, row.updated_at):
                    if old is not None and row.updated_at < old.updated_at:
                        continue  # an older row of an overlapping reload
                    self._rows[account_id] = row
                    changes.append((row, old))
                if self._watermark is None or row.updated_at > self._watermark:
                    self._watermark = row.updated_at
        if changes:
            with self._listeners_lock:
                listeners = self._listeners
            for row, old in changes:
                for listener in listeners:
                    try:
                        listener(row, old)
                    except Exception:
                        log.exception("shared state listener failed for %s", row.state.account_id)
        with self._changed:
            self._changed.notify_all()

    def _poll_rounds(self) -> None:
        with self._lock:
            last = self._last_request
        requests = self._truth.round_requests(last)
        if not requests:
            return
        with self._lock:
            self._last_request = requests[-1].id
        if self.on_rounds is not None:
            try:
                self.on_rounds(requests)
            except Exception:
                log.exception("shared state: handling round requests failed")

