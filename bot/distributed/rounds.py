"""The follower side of the distributed mode: reads become jobs, states come back shared.

`FleetRounds(config, truth, shared)` is used by `bot.app.truth.SharedTruth` in every process that
is not a worker (the monitor, the web, the CLI, the in-process manager); none of them calls an
exchange. `refresh(force, source, owner)` is the manager's refresh:

- a scheduled round (``source`` scheduled_sync, the monitor's scheduler) defers one read job per
  account (`bot.distributed.queue.enqueue`: an account whose read already waits is skipped) and
  returns at once: the workers read at the pace of the exchanges' limits;
- a forced refresh (the CLI's ``--refresh``, ``POST /api/refresh``, ``refresh()``) defers the
  reads and waits until every account's shared state comes from a read that began after the
  request (both instants by the database's clock), at most ``first_read_timeout_seconds``; a
  non-forced refresh (the CLI without ``--refresh``) does the same for the accounts whose
  shared state is older than the TTL, or that have none.

`recover_stalled` gives the jobs of dead workers back (`start_recovery`: periodically, in the
monitor, as every worker does too). `queue_workers()` counts the live queue workers (for /healthz).

The queue's connections live on this object's own asyncio loop thread (``_loop``), opened on
first use; callers block on a `concurrent.futures.Future` (no sleep). ``_open_lock`` guards the
one-time opening (``_opened``). Everything else is immutable after construction.
"""
from __future__ import annotations

import logging
import threading
import time

from sqlalchemy import text

from bot.core.sources import ON_DEMAND, SCHEDULED
from bot.distributed.queue import enqueue, ensure_schema, make_app, readable, recover_stalled
from bot.exchanges.loop import FetchLoop

log = logging.getLogger(__name__)

QUEUE_TIMEOUT_SECONDS = 60.0  # deferring a round's jobs (2,000 accounts: a few seconds)


class FleetRounds:
    def __init__(self, config, truth, shared):
        """``truth`` a `TruthStore`, ``shared`` the process's `SharedStates` (started by its owner)."""
        self._settings = config.settings
        self._accounts = {a.account_id: a for a in config.accounts()}
        self._order = tuple(self._accounts)
        self._jobs = frozenset(i for i, a in self._accounts.items() if readable(a))
        self._truth = truth
        self._shared = shared
        self._service = None
        self._app = make_app(self._settings.database_url)
        self._loop = FetchLoop(name="task-queue")
        self._open_lock = threading.Lock()
        self._opened = False
        self._stop = threading.Event()
        self._recovery: threading.Thread | None = None

    def attach(self, service) -> None:
        """The process's `BalanceService` (the states are answered from it once followed)."""
        self._service = service

    # ------------------------------------------------------------------ the queue

    def _call(self, make_coroutine, timeout: float = QUEUE_TIMEOUT_SECONDS):
        """Run ``make_coroutine(app)`` on the queue's loop (opening the app first) and wait."""
        with self._open_lock:
            if not self._opened:
                ensure_schema(self._settings.database_url)
                self._loop.submit(self._open()).result(timeout)
                self._opened = True
        return self._loop.submit(make_coroutine(self._app)).result(timeout)

    async def _open(self) -> None:
        await self._app.open_async()

    def enqueue(self, account_ids, source: str) -> tuple[int, int]:
        """Defer a read of each of ``account_ids`` a worker can read; (deferred, already waiting)."""
        accounts = [self._accounts[i] for i in account_ids if i in self._jobs]
        if not accounts:
            return 0, 0
        return self._call(lambda app: enqueue(app, accounts, source))

    def recover_stalled(self) -> int:
        return self._call(lambda app: recover_stalled(app, self._settings.fetch.stall_timeout_seconds))

    def start_recovery(self) -> None:
        """Give stalled workers' jobs back every third of the stall timeout, on a thread (the monitor)."""
        if self._recovery is None:
            self._recovery = threading.Thread(target=self._recover, name="stalled-jobs", daemon=True)
            self._recovery.start()

    def _recover(self) -> None:
        while not self._stop.wait(self._settings.fetch.stall_timeout_seconds / 3):
            try:
                self.recover_stalled()
            except Exception as exc:
                log.warning("task queue: looking for stalled jobs failed (%s: %s)", type(exc).__name__, exc)

    def close(self) -> None:
        """Stop the recovery thread, close the queue's connections and stop its loop."""
        self._stop.set()
        if self._recovery is not None:
            self._recovery.join()
        with self._open_lock:
            opened, self._opened = self._opened, False
        if opened:
            try:
                self._loop.submit(self._close()).result(5.0)
            except Exception as exc:
                log.warning("task queue: closing its connections failed (%s: %s)", type(exc).__name__, exc)
        self._loop.close(5.0)

    async def _close(self) -> None:
        await self._app.close_async()

    # ------------------------------------------------------------------ rounds

    def refresh(self, force: bool, source: str, owner: str | None):
        """The manager's refresh in distributed mode (see the module docstring)."""
        service = self._service
        ids = self._order if owner is None else service.owner_ids(owner)
        wanted = [i for i in ids if i in self._jobs]
        if force and source == SCHEDULED:
            deferred, waiting = self.enqueue(wanted, source)
            log.info("round: %d reads queued (%d already waiting)", deferred, waiting)
            return service.current_states()
        if not force:
            wanted = [i for i in wanted if self._shared.outdated(i, self._settings.cache_ttl_seconds)]
        if not wanted:
            return service.states(tuple(ids), source=ON_DEMAND)
        since = self._truth.now()
        deadline = time.monotonic() + self._settings.first_read_timeout_seconds
        self.enqueue(wanted, source if force else ON_DEMAND)
        if not self._shared.wait_read_since(wanted, since, deadline - time.monotonic()):
            log.info("refresh: %d accounts not read by the workers within %g s", len(wanted),
                     self._settings.first_read_timeout_seconds)
        return service.states(tuple(ids), source=ON_DEMAND)

    # ------------------------------------------------------------------ health

    def queue_workers(self) -> int | None:
        """Live queue workers (a heartbeat within the stall timeout; a worker process runs one per
        exchange queue it reads); None when the queue has no schema yet."""
        engine = self._truth.store.engines()[0]
        with engine.connect() as connection:
            if connection.execute(text("SELECT to_regclass('procrastinate_workers')")).scalar() is None:
                return None
            return connection.execute(text(
                "SELECT count(*) FROM procrastinate_workers WHERE last_heartbeat > now() - make_interval(secs => :s)"),
                {"s": self._settings.fetch.stall_timeout_seconds}).scalar_one()

