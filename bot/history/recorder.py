"""History: snapshots of account values and the daily close per user, fed by the manager's reads.

`HistoryRecorder(view, store, settings, refresh=...)` subscribes to a `StateView`. Successful reads are queued and written by one
writer thread, so the fetch loop never waits for the database; each batch goes to the store in
one transaction, and a batch gathers reads while they keep arriving (see `_gather`), so a
round is one transaction (one per second of a long round). A snapshot is written when the value changed or when the account's last one is
older than ``snapshot_interval_minutes``; failed reads never write one (a stale value is never
written as if fresh). After each batch the provisional daily close of today (in
``settings.timezone``) is rewritten for the users concerned whose close changed: a stale account
carries its last good holdings, marked ``stale``. The writer remembers what it last wrote per
user and day, so a round of unchanged accounts writes no daily row at all; a batch's snapshots
and changed closes go to the store in ONE transaction (`BalanceStore.add_history`, set-based).
It assumes it is the only writer of its users' provisional closes. ``refresh()`` (given by the
application) makes the last forced read before a day is closed.

`close_day(day)` finalises a day (idempotent; one UPDATE for every user);
`finalize_missed_days()` finalises, as ``carried``, every provisional day before today that a
stopped process never closed (one UPDATE), and writes each day during which no process ran as
``carried`` too. With several processes on one store, only the holder of the closer lease
(``closer()`` true, `bot.app.truth`) does either. States another process read (source
``followed``) are that process's to record.

Locks: ``_last_lock`` guards ``_last`` (account id → (captured_at, balance) of its newest
snapshot). ``_daily_lock`` guards ``_written`` (user → (day, fingerprint) of the close last
written) and is held from comparing to writing, so the writer thread and `close_day` (the
scheduler's thread) never interleave a day. ``_owners`` (owner → account id → its latest state,
from the reads received) is touched only by the writer thread. The queue is thread-safe; only
the writer thread writes snapshots.
"""
from __future__ import annotations

import datetime as dt
import logging
import queue
import threading
from decimal import Decimal
from typing import Callable, Iterable
from zoneinfo import ZoneInfo

from bot.balances.view import StateView
from bot.config import MASTER_OWNER
from bot.core.queues import gather_batch
from bot.core.sources import FOLLOWED, INITIAL
from bot.core.state import AccountState, Status
from bot.core.timefmt import utc_from_timestamp
from bot.store import AssetRow, BalanceStore, DailyRow, SnapshotIn

log = logging.getLogger(__name__)

DEFAULT_RETENTION_DAYS = 90
GATHER_IDLE_SECONDS = 0.02   # a batch keeps gathering while reads arrive at least this often ...
GATHER_SECONDS = 1.0         # ... for at most this long
GATHER_MAX = 10_000          # ... and this many entries
_STOP = object()
_FLUSH = object()
_DAILY_STATUSES = (Status.OK, Status.STALE)  # a daily close carries a stale account's last good holdings


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
        self._cut = threading.Event()  # set after a stop or a flush is queued: the writer stops gathering
        self._last_lock = threading.Lock()
        self._last: dict[str, tuple[dt.datetime, Decimal]] = {}
        self._daily_lock = threading.Lock()
        self._written: dict[str, tuple[dt.date, tuple]] = {}
        self._owners: dict[str, dict[str, AccountState]] = {}
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
        # Listen first, then let the writer thread take the current states: no read falls between.
        self._unsubscribe = self._view.subscribe(self._on_state)
        self._thread = threading.Thread(target=self._run, name="history-writer", daemon=True)
        self._thread.start()
        return self

    def flush(self) -> None:
        """Wait until every read queued so far is written (the writer stops gathering at once)."""
        if self._thread is not None:
            self._queue.put(_FLUSH)
            self._cut.set()
        self._queue.join()

    def stop(self) -> None:
        """Stop listening, write what is queued, then stop the writer thread."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._thread is not None:
            self._queue.put(_STOP)
            self._cut.set()
            self._thread.join()
            self._thread = None

    # ------------------------------------------------------------------ writing

    def today(self) -> dt.date:
        return self._now().astimezone(self._zone).date()

    def record(self, state: AccountState, source: str) -> None:
        """Record a state another process read as if read here (distributed mode: the workers
        write no history; the monitor records what they read, with the source they read it for)."""
        self._queue.put((state, source))

    def _on_state(self, state: AccountState, previous: AccountState | None, source: str) -> None:
        if source != FOLLOWED:
            self._queue.put((state, source))

    def _run(self) -> None:
        for state in self._view.current_states():  # what was read before start (reads queued since follow)
            if state.owner != MASTER_OWNER:
                self._owners.setdefault(state.owner, {})[state.account_id] = state
        while True:
            batch = self._gather()
            stop = any(entry is _STOP for entry in batch)
            reads = [entry for entry in batch if entry is not _STOP and entry is not _FLUSH]
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

    def _gather(self) -> list:
        """The next batch (`gather_batch`): a round's reads are written in one transaction, or
        one per `GATHER_SECONDS` of a long round; a lone read waits at most `GATHER_IDLE_SECONDS`."""
        self._cut.clear()
        return gather_batch(self._queue, GATHER_MAX, GATHER_IDLE_SECONDS, GATHER_SECONDS,
                            lambda entry: entry is _STOP or entry is _FLUSH, self._cut)

    def _write(self, reads: list[tuple[AccountState, str]]) -> None:
        """One batch: its snapshots and the changed provisional closes of its users, one transaction."""
        written: dict[str, tuple[dt.datetime, Decimal]] = {}  # this batch's snapshots, by account
        snapshots = []
        for state, source in reads:
            snapshot = self._snapshot_for(state, source, written)
            if snapshot is not None:
                snapshots.append(snapshot)
                written[snapshot.account_id] = (snapshot.captured_at, snapshot.balance)
        for state, _ in reads:
            if state.owner != MASTER_OWNER:
                self._owners.setdefault(state.owner, {})[state.account_id] = state
        owners = {state.owner for state, _ in reads if state.owner != MASTER_OWNER}
        day = self.today()
        with self._daily_lock:
            closes, prints = self._changed_closes(day, {owner: self._owners[owner].values() for owner in owners})
            if snapshots or closes:
                self._store.add_history(snapshots, day, closes)
            self._written.update(prints)
        if snapshots:
            with self._last_lock:
                for snap in snapshots:
                    self._last[snap.account_id] = (snap.captured_at, snap.balance)

    def _snapshot_for(self, state: AccountState, source: str,
                      batch: dict[str, tuple[dt.datetime, Decimal]]) -> SnapshotIn | None:
        """The snapshot the policy asks for after ``state`` (None: none), given the snapshots
        already taken in this ``batch``."""
        if state.status is not Status.OK or state.value is None or state.fetched_at is None:
            return None
        captured = utc_from_timestamp(state.fetched_at)
        last = batch.get(state.account_id)
        if last is None:
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
            if state.value is None or state.status not in _DAILY_STATUSES:
                continue
            for asset, holding in state.holdings.items():
                rows.append(DailyRow(account_id=state.account_id, asset=asset, amount=holding.amount,
                                     price=holding.price, value=holding.value, base_currency=self._base,
                                     account_status=state.status.value))
        return rows

    def _changed_closes(self, day: dt.date, states_by_user: dict[str, Iterable[AccountState]]
                        ) -> tuple[dict[str, list[DailyRow]], dict[str, tuple[dt.date, tuple]]]:
        """The rows of the users whose close of ``day`` differs from the one last written (users
        without any known value are left out: their last close stands), and their new
        fingerprints. Called under ``_daily_lock``."""
        closes, prints = {}, {}
        for user, states in states_by_user.items():
            kept = sorted((s for s in states if s.value is not None and s.status in _DAILY_STATUSES),
                          key=lambda s: s.account_id)
            if not kept:
                continue
            entry = (day, tuple((s.account_id, s.status, s.holdings) for s in kept))
            if self._written.get(user) != entry:
                closes[user] = self.daily_rows(kept)
                prints[user] = entry
        return closes, prints

    def write_provisional(self, users: Iterable[str], day: dt.date | None = None) -> int:
        """Write the provisional close of ``day`` (today) for those of ``users`` whose close
        changed since this recorder last wrote it, from the view's current states, in one
        transaction. Returns how many users' closes were written."""
        users = set(users)
        if not users:
            return 0
        day = day or self.today()
        by_owner: dict[str, list[AccountState]] = {user: [] for user in users}
        for state in self._view.current_states():
            if state.owner in by_owner:
                by_owner[state.owner].append(state)
        with self._daily_lock:
            closes, prints = self._changed_closes(day, by_owner)
            if closes:
                self._store.replace_days(day, closes)
            self._written.update(prints)
        return len(closes)

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
        return self._store.finalize_days(users, day)

    def finalize_missed_days(self) -> int:
        """Finalise, as carried forward, every provisional day before today (a missed midnight,
        one UPDATE), then write the days nobody closed in between (see the module docstring); 0
        when this process is not the closer. Returns how many days were closed."""
        if self._closer is not None and not self._closer():
            return 0
        missed = self._store.finalize_open_days(before=self.today())
        filled = self._store.fill_missing_days(self.today())
        if missed or filled:
            log.info("history: finalised %d missed daily closes and %d days without a process as carried forward",
                     missed, filled)
        return missed + filled

    def prune(self, retention_days: float = DEFAULT_RETENTION_DAYS) -> int:
        return self._store.prune_snapshots(self._now() - dt.timedelta(days=retention_days))
