"""`StatePublisher`: every state this process reads, written to the shared ``account_states``.

It subscribes to the `BalanceService` (states other processes read, source ``followed``, are not
written back) and notes when each read began (the listener runs as the read ends: now less its
``read_seconds``; ``read_started`` keeps the last one per account). One writer thread gathers
what is queued while reads keep arriving (`gather_batch`, at most `GATHER_SECONDS`: a round of
2,000 reads is a few transactions, not hundreds) and writes each batch in one transaction
(`TruthStore.publish`: the rows, the floors of the keys read, and on PostgreSQL the
``NOTIFY`` that wakes the followers), so the fetch loop never waits for the database. A batch
that fails is logged and dropped: the next read of those accounts writes them again.

The queue is thread-safe; only the writer thread touches the store. ``read_started`` is written
by the service's listener (single assignments of a dict entry) and read by anyone.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Callable, Iterable

from bot.core.queues import gather_batch
from bot.core.sources import FOLLOWED
from bot.core.state import AccountState
from bot.store.truth import Floors, TruthStore

log = logging.getLogger(__name__)

_STOP = object()
_FLUSH = object()
GATHER_IDLE_SECONDS = 0.02  # a batch keeps gathering while reads arrive at least this often ...
GATHER_SECONDS = 0.25       # ... for at most this long (followers see a state within ~1 s anyway)
GATHER_MAX = 5000


class StatePublisher:
    def __init__(self, truth: TruthStore, identity: str, floors: Callable[[Iterable[str]], list[Floors]]):
        """``floors(account_ids)``: the continuation of the keys of those accounts held here."""
        self._truth = truth
        self._identity = identity
        self._floors = floors
        self._queue: queue.Queue = queue.Queue()
        self._cut = threading.Event()  # set after a stop or a flush is queued: the writer stops gathering
        self._thread: threading.Thread | None = None
        self.read_started: dict[str, float] = {}  # account id -> when its last read began (epoch seconds)

    def on_state(self, state: AccountState, previous: AccountState | None, source: str) -> None:
        """The service's listener: queue what this process read."""
        if source == FOLLOWED:
            return
        started = None if state.read_seconds is None else time.time() - state.read_seconds
        if started is not None:
            self.read_started[state.account_id] = started
        self._queue.put((state, started))

    def start(self) -> StatePublisher:
        self._thread = threading.Thread(target=self._run, name="state-publisher", daemon=True)
        self._thread.start()
        return self

    def flush(self) -> None:
        """Wait until every state queued so far is written (or dropped after a failure); the
        writer stops gathering at once."""
        if self._thread is not None:
            self._queue.put(_FLUSH)
            self._cut.set()
        self._queue.join()

    def stop(self) -> None:
        """Write what is queued, then stop the writer thread."""
        if self._thread is not None:
            self._queue.put(_STOP)
            self._cut.set()
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        while True:
            self._cut.clear()
            batch = gather_batch(self._queue, GATHER_MAX, GATHER_IDLE_SECONDS, GATHER_SECONDS,
                                 lambda entry: entry is _STOP or entry is _FLUSH, self._cut)
            latest = {entry[0].account_id: entry for entry in batch
                      if entry is not _STOP and entry is not _FLUSH}  # newest per account
            try:
                if latest:
                    started = {i: at for i, (_, at) in latest.items() if at is not None}
                    self._truth.publish([state for state, _ in latest.values()], self._identity, self._floors(latest),
                                        started)
            except Exception as exc:
                log.warning("shared state: writing %d states failed (%s: %s)", len(latest), type(exc).__name__, exc)
            finally:
                for _ in batch:
                    self._queue.task_done()
            if any(entry is _STOP for entry in batch):
                return
