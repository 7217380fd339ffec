"""A worker of the distributed mode: reads accounts as the task queue hands them out.

`FleetWorker` (``python -m bot.worker``, `bot.app.worker`) runs procrastinate workers (one per exchange queue of the configuration,
`bot.distributed.queue`) on its own asyncio loop; each job reads one account through the
exchange clients of `bot.exchanges` (this worker's own per-address budgets: one egress address
per worker, ``--source-address``), and writes the state to the shared ``account_states`` in the
transaction that advances the key's continuation (`bot.store.fleet`):

1. ``begin``: the key's nonce floor, the seconds since its last call by the database's clock
   (the previous read may have run on another host, with another clock) and its modelled call
   counter after that call, and the account's shared state (the previous state: a failed read
   shows the last good value as ``stale``);
2. the read: the key's lane continues that nonce floor, spaces its call from that last call and
   counts from that counter level decayed since then (never below its own);
3. ``finish``: the state (``read_started_at`` the database's clock at 1, so that a forced round
   asked before it is seen as done), the highest nonce sent, the lane's counter level now and
   the last call (the database's clock now), in one transaction.

One key is never read by two workers at once: the job's lock is the key's (procrastinate).
A worker whose address is paused at an exchange (429 / 418 with Retry-After, more than
`LEAVE_SECONDS`) stops taking that exchange's jobs until the pause ends, and a job that meets
such a pause goes back to the queue (`LeftForOthers`, retried at once) for a worker whose address
is not paused. A worker killed mid-read: after ``fetch.stall_timeout_seconds`` without its
heartbeat, its jobs go back to the queue (`recover_stalled`, run by the monitor and every
worker). `run` returns when its ``stop`` event is set, after the reads in progress finished.

Loop-only: everything of a `FleetWorker` is touched on its asyncio loop, except the store calls,
which run in the loop's default executor (thread-safe: `TruthStore`).
"""
from __future__ import annotations

import asyncio
import logging
import time

import procrastinate
from procrastinate import RetryStrategy
from sqlalchemy.exc import DBAPIError

from bot.balances.leases import keys_of, process_identity
from bot.config import Config, ConfigError
from bot.core.sources import SCHEDULED, SOURCES
from bot.distributed.queue import (READ_TASK, ensure_schema, make_app, queue_of, readable, lock_of,
                                   recover_stalled)
from bot.exchanges.clients import ExchangeRegistry, build_client
from bot.exchanges.reader import read_account
from bot.store.truth import TruthStore

log = logging.getLogger("bot.worker")

LEAVE_SECONDS = 1.0       # a pause longer than this: leave the exchange's jobs to the other workers
SUPERVISE_SECONDS = 0.5   # how often pauses are looked at
MAX_ATTEMPTS = 20         # times a job is handed back (paused addresses, database errors) ...
RETRY_SECONDS = 0.5       # ... each after this long
POLL_SECONDS = 1.0        # an idle queue worker looks for jobs this often (the next read of a key waits for it)


class LeftForOthers(Exception):
    """This worker's address is paused at the account's exchange: another worker should read it."""


class FleetWorker:
    def __init__(self, config: Config, open_store, concurrency: int = 4, identity: str | None = None,
                 time_scale: float = 1.0, poll_seconds: float = POLL_SECONDS):
        """``open_store(config)`` opens the store (a `BalanceStore`; it raises ConfigError);
        ``concurrency``: jobs run at once per exchange queue; ``time_scale`` divides the
        exchanges' durations and ``poll_seconds`` is how often idle queue workers look for jobs
        (tests against time-scaled fakes). Builds clients (no I/O); ConfigError unless
        ``fetch.mode`` is distributed."""
        settings = self.settings = config.settings
        if not settings.fetch.distributed:
            raise ConfigError(f"{config.directory / 'settings.json'}: field 'fetch.mode': a worker needs "
                              f"\"distributed\", got {settings.fetch.mode!r}")
        self.config = config
        self.identity = identity or process_identity()
        self.concurrency = concurrency
        self._registry = ExchangeRegistry(settings, time_scale=time_scale)
        self._accounts = {a.account_id: a for a in config.accounts() if readable(a)}
        self._clients = {i: build_client(a, self._registry, settings.base_currency) for i, a in self._accounts.items()}
        self._keys = keys_of(config)
        self._queues = sorted({queue_of(a) for a in self._accounts.values()})
        self._open_store = open_store
        self._store = None
        self._truth: TruthStore | None = None
        self._app: procrastinate.App | None = None
        self._running: dict[str, asyncio.Task] = {}  # queue -> its procrastinate worker
        self.reads = 0
        stall = settings.fetch.stall_timeout_seconds
        self._options = dict(concurrency=concurrency, wait=True, install_signal_handlers=False, delete_jobs="always",
                             update_heartbeat_interval=stall / 3, stalled_worker_timeout=stall,
                             fetch_job_polling_interval=poll_seconds, abort_job_polling_interval=stall,
                             shutdown_graceful_timeout=settings.request_timeout_seconds * (settings.retries + 1) + 5)

    # ------------------------------------------------------------------ lifecycle

    async def run(self, stop: asyncio.Event) -> None:
        """Take jobs until ``stop`` is set, then finish the reads in progress and close."""
        url = self.settings.database_url
        self._store = await asyncio.to_thread(self._open_store, self.config)  # ConfigError naming the reason
        await asyncio.to_thread(ensure_schema, url)
        self._truth = TruthStore(self._store)
        self._app = make_app(url, max_connections=2 * len(self._queues) + 2)
        self._app.task(name=READ_TASK, retry=RetryStrategy(max_attempts=MAX_ATTEMPTS, wait=RETRY_SECONDS,
                                                           retry_exceptions={LeftForOthers, DBAPIError}))(self._job)
        try:
            async with self._app.open_async():
                log.info("worker %s: reading %d accounts from queues %s (address %s, concurrency %d)", self.identity,
                         len(self._accounts), ", ".join(self._queues), self.settings.fetch.source_address or "default",
                         self.concurrency)
                await self._supervise(stop)
        finally:
            await self._registry.aclose()
            self._store.close()
        log.info("worker %s: stopped after %d reads", self.identity, self.reads)

    async def _supervise(self, stop: asyncio.Event) -> None:
        """Keep one procrastinate worker per queue running while its exchange is not paused here;
        give stalled workers' jobs back every third of the stall timeout."""
        stall = self.settings.fetch.stall_timeout_seconds
        next_recovery = 0.0
        try:
            while not stop.is_set():
                for queue in self._queues:
                    paused = self._paused(queue)
                    task = self._running.get(queue)
                    if task is not None and task.done():
                        self._ended(queue, task)
                        task = None
                    if paused and task is not None:
                        log.warning("worker %s: address paused at %s: leaving its reads to the other workers",
                                    self.identity, queue)
                        await self._stop_queue(queue)
                    elif not paused and task is None:
                        self._running[queue] = asyncio.create_task(
                            self._app.run_worker_async(queues=[queue], name=f"{self.identity} {queue}",
                                                       **self._options))
                if time.monotonic() >= next_recovery:
                    next_recovery = time.monotonic() + stall / 3
                    try:
                        await recover_stalled(self._app, stall)
                    except Exception as exc:
                        log.warning("worker: looking for stalled jobs failed (%s: %s)", type(exc).__name__, exc)
                try:
                    await asyncio.wait_for(stop.wait(), SUPERVISE_SECONDS)
                except asyncio.TimeoutError:
                    pass
        finally:
            for queue in list(self._running):
                await self._stop_queue(queue)

    def _ended(self, queue: str, task: asyncio.Task) -> None:
        del self._running[queue]
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            log.warning("worker %s: the worker of %s stopped (%s: %s); restarting it", self.identity, queue,
                        type(exc).__name__, exc)

    async def _stop_queue(self, queue: str) -> None:
        """Stop taking the queue's jobs; the ones running finish (procrastinate's graceful stop)."""
        task = self._running.pop(queue, None)
        if task is None:
            return
        task.cancel()
        try:
            await task
        except (asyncio.CancelledError, Exception):
            pass

    def _paused(self, queue: str) -> bool:
        """Whether this worker's address is paused at the queue's exchange for longer than `LEAVE_SECONDS`."""
        exchange = queue.rsplit(".", 1)[1]
        horizon = time.time() + LEAVE_SECONDS
        return any(b.exchange == exchange and b.paused_until > horizon for b in self._registry.budgets())

    # ------------------------------------------------------------------ one read

    async def _job(self, account_id: str, source: str) -> None:
        """The task: read ``account_id`` (see the module docstring)."""
        account = self._accounts.get(account_id)
        if account is None:
            log.warning("worker %s: job for an account not in this configuration: %r", self.identity, account_id[:80])
            return
        if source not in SOURCES:
            source = SCHEDULED
        client = self._clients[account_id]
        queue = queue_of(account)
        if self._paused(queue):
            raise LeftForOthers(f"{account.broker.exchange} paused at this worker's address")
        fingerprint = self._keys.get(account_id)
        turn, previous = await asyncio.to_thread(self._truth.begin_read, lock_of(account), self.identity, account_id)
        if fingerprint is not None:
            last_call = None if turn.since_last_call is None else time.time() - turn.since_last_call
            self._registry.continue_key(fingerprint, turn.nonce_floor, last_call, turn.counter_level)
        state = await read_account(account, client, previous, self.settings, time.perf_counter(), max_wait=LEAVE_SECONDS)
        nonce, level = (None, None) if fingerprint is None else \
            (self._registry.key_floors(fingerprint)[0], self._registry.key_level(fingerprint))
        if state.error_class == "RateLimited" and self._paused(queue):
            await asyncio.to_thread(self._truth.finish_read, None, self.identity, source, turn, nonce, level)
            raise LeftForOthers(state.error or "paused")
        await asyncio.to_thread(self._truth.finish_read, state, self.identity, source, turn, nonce, level)
        self.reads += 1
