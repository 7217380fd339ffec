"""History: snapshots of account values and the daily close per user, fed by the manager's reads.

`HistoryRecorder(view, store, settings, refresh=...)` subscribes to a `StateView`. Successful reads are queued and written by one
writer thread, so a fetch worker never waits for the database; each batch goes to the store in
one transaction. A snapshot is written when the value changed or when the account's last one is
older than ``snapshot_interval_minutes``; failed reads never write one (a stale value is never
written as if fresh). After each batch the provisional daily close of today (in
``settings.timezone``) is rewritten for the users concerned, from the manager's current states:
a stale account carries its last good holdings, marked ``stale``. ``refresh()`` (given by the
application) makes the last forced read before a day is closed.

`close_day(day)` finalises a day (idempotent); `finalize_missed_days()` finalises, as
``carried``, every provisional day before today that a stopped process never closed, and writes
each day during which no process ran as ``carried`` too. With several processes on one store,
only the holder of the closer lease (``closer()`` true, `bot.app.truth`) does either. States
another process read (source ``followed``) are that process's to record.

Locks: ``_last_lock`` guards ``_last`` (account id → (captured_at, balance) of its newest
snapshot). The queue is thread-safe; only the writer thread touches the store for snapshots.
"""
from __future__ import annotations

import datetime as dt
import logging
import queue
import threading
from decimal import Decimal
from typing import Iterable
from zoneinfo import ZoneInfo

from typing import Callable

from bot.balances.view import StateView
from bot.config import MASTER_OWNER
from bot.core.queues import next_batch
from bot.core.sources import FOLLOWED, INITIAL
from bot.core.state import AccountState, Status
from bot.core.timefmt import utc_from_timestamp
from bot.store import AssetRow, BalanceStore, DailyRow, SnapshotIn

log = logging.getLogger(__name__)

DEFAULT_RETENTION_DAYS = 90
_STOP = object()


class HistoryRecorder:
    def __init__(self, view: StateView, store: BalanceStore, settings, now=lambda: dt.datetime.now(dt.timezone.utc),
                 refresh: Callable[[], object] | None = None, closer: Callable[[], bool] | None = None):
        """``refresh()`` reads every account before `close_day` finalises (None: close from the
        states as they are); ``closer()`` says whether this process closes days (None: it does)."""
        self._closer = closer
        self._view = view
        self._refresh = refresh
        self._unsubscribe: Callable[[], None] | None = None
        self._store = store
        self._base = settings.base_currency
        self._zone = ZoneInfo(settings.timezone)
        self._interval = dt.timedelta(minutes=settings.snapshot_interval_minutes)
        self._now = now
        self._queue: queue.Queue = queue.Queue()
        self._last_lock = threading.Lock()
        self._last: dict[str, tuple[dt.datetime, Decimal]] = {}
        self._thread: threading.Thread | None = None

    @property
    def store(self) -> BalanceStore:
        return self._store

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> HistoryRecorder:
        """Load each account's newest snapshot, close missed days, listen to the manager."""
        with self._last_lock:
            self._last = dict(self._store.last_snapshots())
        self.finalize_missed_days()
        self._thread = threading.Thread(target=self._run, name="history-writer", daemon=True)
        self._thread.start()
        self._unsubscribe = self._view.subscribe(self._on_state)
        return self

    def flush(self) -> None:
        """Wait until every read queued so far is written."""
        self._queue.join()

    def stop(self) -> None:
        """Stop listening, write what is queued, then stop the writer thread."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join()
            self._thread = None

    # ------------------------------------------------------------------ writing

    def today(self) -> dt.date:
        return self._now().astimezone(self._zone).date()

    def _on_state(self, state: AccountState, previous: AccountState | None, source: str) -> None:
        if source != FOLLOWED:
            self._queue.put((state, source))

    def _run(self) -> None:
        while True:
            batch = next_batch(self._queue)
            stop = any(entry is _STOP for entry in batch)
            reads = [entry for entry in batch if entry is not _STOP]
            try:
                if reads:
                    self._write(reads)
            except Exception:
                log.exception("history: writing %d reads failed", len(reads))
            finally:
                for _ in batch:
                    self._queue.task_done()
            if stop:
                return

    def _write(self, reads: list[tuple[AccountState, str]]) -> None:
        snapshots = [s for s in (self._snapshot_for(state, source) for state, source in reads) if s is not None]
        if snapshots:
            self._store.add_snapshots(snapshots)
            with self._last_lock:
                for snap in snapshots:
                    self._last[snap.account_id] = (snap.captured_at, snap.balance)
        owners = {state.owner for state, _ in reads if state.owner != MASTER_OWNER}
        self.write_provisional(owners)

    def _snapshot_for(self, state: AccountState, source: str) -> SnapshotIn | None:
        if state.status is not Status.OK or state.value is None or state.fetched_at is None:
            return None
        captured = utc_from_timestamp(state.fetched_at)
        with self._last_lock:
            last = self._last.get(state.account_id)
        if last is None:
            source = INITIAL
        elif last[1] == state.value and captured - last[0] < self._interval:
            return None
        assets = tuple(AssetRow(asset, h.amount, h.price, h.value) for asset, h in state.holdings.items())
        return SnapshotIn(account_id=state.account_id, owner=state.owner, broker=state.broker,
                          balance=state.value, currency=self._base, source=source, captured_at=captured,
                          assets=assets)

    # ------------------------------------------------------------------ daily close

    def daily_rows(self, states: Iterable[AccountState]) -> list[DailyRow]:
        """Per-asset rows of the accounts whose value is known (stale ones marked so)."""
        rows = []
        for state in states:
            if state.value is None or state.status not in (Status.OK, Status.STALE):
                continue
            for asset, holding in state.holdings.items():
                rows.append(DailyRow(account_id=state.account_id, asset=asset, amount=holding.amount,
                                     price=holding.price, value=holding.value, base_currency=self._base,
                                     account_status=state.status.value))
        return rows

    def write_provisional(self, users: Iterable[str], day: dt.date | None = None) -> None:
        """Rewrite the provisional close of ``day`` (today) for ``users`` from the current states."""
        users = set(users)
        if not users:
            return
        day = day or self.today()
        by_owner: dict[str, list[AccountState]] = {}
        for state in self._view.current_states():
            by_owner.setdefault(state.owner, []).append(state)
        for user in sorted(users):
            states = by_owner.get(user, [])
            if any(s.value is not None for s in states):
                self._store.upsert_daily(user, day, self.daily_rows(states))

    def close_day(self, day: dt.date) -> int:
        """Finalise ``day`` for every enabled user after one last forced read (the midnight job).
        Idempotent: a final day is never changed. Returns how many days were finalised (0 when
        this process is not the closer)."""
        if self._closer is not None and not self._closer():
            return 0
        if self._refresh is not None:
            self._refresh()
        self.flush()
        users = [u.user_id for u in self._view.config.enabled_users()]
        self.write_provisional(users, day=day)
        return sum(self._store.finalize_day(user, day) for user in users)

    def finalize_missed_days(self) -> int:
        """Finalise, as carried forward, every provisional day before today (a missed midnight),
        then write the days nobody closed in between (see the module docstring); 0 when this
        process is not the closer. Returns how many days were closed."""
        if self._closer is not None and not self._closer():
            return 0
        missed = self._store.open_days(before=self.today())
        for user, day in missed:
            self._store.finalize_day(user, day, carried=True)
        filled = self._store.fill_missing_days(self.today())
        if missed or filled:
            log.info("history: finalised %d missed daily closes and %d days without a process as carried forward",
                     len(missed), filled)
        return len(missed) + filled

    def prune(self, retention_days: float = DEFAULT_RETENTION_DAYS) -> int:
        return self._store.prune_snapshots(self._now() - dt.timedelta(days=retention_days))
