"""The distributed mode's task queue: procrastinate on the store's PostgreSQL.

One job per account read: task `READ_TASK` with arguments ``account_id`` and ``source`` (a
snapshot source), on the queue of the account's exchange (`queue_of`: ``multibalance.kraken``,
``multibalance.paper``, ...), with

- ``lock`` the API key's lease name (``key:<fingerprint>``, a hash, never the key): procrastinate
  starts a job only when no job of the same lock is running or queued before it, on any worker,
  so one key is read by one worker at a time, in the order the reads were asked;
- ``queueing_lock`` the account: at most one read of an account waits in the queue (asking
  again while one waits adds nothing: that read starts after the request anyway).

The schema is procrastinate's own, applied by the first process that finds it missing (under a
PostgreSQL advisory lock, so processes starting together apply it once). `make_app` is cheap
and does no I/O; the app is opened by its user (``async with app.open_async()``).
"""
from __future__ import annotations

import asyncio
import logging
from typing import Iterable

import procrastinate
import psycopg
from procrastinate.exceptions import AlreadyEnqueued
from procrastinate.schema import SchemaManager
from sqlalchemy.engine import make_url

from bot.config import AccountConfig
from bot.store.leases import KEY_PREFIX

log = logging.getLogger(__name__)

READ_TASK = "multibalance.read"
QUEUE_PREFIX = "multibalance."
PAPER_QUEUE = QUEUE_PREFIX + "paper"
_SCHEMA_LOCK = 0x6D62_7175  # pg_advisory_lock key of the schema check ("mbqu")
DEFER_BATCH = 50  # defers in flight at once


def conninfo(database_url: str) -> str:
    """The libpq URL of a SQLAlchemy PostgreSQL URL (``postgresql+psycopg://`` → ``postgresql://``)."""
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


def make_app(database_url: str, max_connections: int = 4) -> procrastinate.App:
    """A procrastinate app on ``database_url`` (not opened)."""
    connector = procrastinate.PsycopgConnector(conninfo=conninfo(database_url), min_size=1,
                                               max_size=max(2, max_connections))
    return procrastinate.App(connector=connector)


def ensure_schema(database_url: str) -> bool:
    """Apply procrastinate's schema unless it is there; True if it was applied now."""
    with psycopg.connect(conninfo(database_url), autocommit=True) as connection:
        connection.execute("SELECT pg_advisory_lock(%s)", (_SCHEMA_LOCK,))
        try:
            if connection.execute("SELECT to_regclass('procrastinate_jobs')").fetchone()[0] is not None:
                return False
            connection.execute(SchemaManager.get_schema())
            log.info("task queue: procrastinate schema applied")
            return True
        finally:
            connection.execute("SELECT pg_advisory_unlock(%s)", (_SCHEMA_LOCK,))


def queue_of(account: AccountConfig) -> str:
    return PAPER_QUEUE if account.broker.paper else QUEUE_PREFIX + account.broker.exchange


def lock_of(account: AccountConfig) -> str | None:
    """The job lock of the account's reads: its API key's lease name (None: a paper account)."""
    if account.broker.paper or account.broker.credentials is None:
        return None
    return KEY_PREFIX + account.broker.credentials.api_key.fingerprint()


def readable(account: AccountConfig) -> bool:
    """Whether a worker can read the account (paper, or with credentials)."""
    return account.broker.paper or account.broker.credentials is not None


async def enqueue(app: procrastinate.App, accounts: Iterable[AccountConfig], source: str) -> tuple[int, int]:
    """Defer one read job per account; returns (jobs deferred, accounts whose read already waits)."""
    deferred = waiting = 0

    async def one(account: AccountConfig) -> bool:
        deferrer = app.configure_task(READ_TASK, lock=lock_of(account), queueing_lock=account.account_id,
                                      queue=queue_of(account))
        try:
            await deferrer.defer_async(account_id=account.account_id, source=source)
            return True
        except AlreadyEnqueued:
            return False

    accounts = list(accounts)
    for start in range(0, len(accounts), DEFER_BATCH):
        for done in await asyncio.gather(*(one(a) for a in accounts[start:start + DEFER_BATCH])):
            deferred, waiting = deferred + done, waiting + (not done)
    return deferred, waiting


async def recover_stalled(app: procrastinate.App, stall_seconds: float) -> int:
    """Give the running jobs of workers silent for ``stall_seconds`` (killed, cut off) back to the
    queue; returns how many. Safe to run in several processes at once."""
    recovered = 0
    for job in await app.job_manager.get_stalled_jobs(seconds_since_heartbeat=stall_seconds):
        try:
            await app.job_manager.retry_job(job)
            recovered += 1
        except Exception as exc:  # another process retried it first
            log.debug("task queue: job %s not retried (%s)", job.id, exc)
    if recovered:
        log.warning("task queue: %d reads of stalled workers given back to the queue", recovered)
    return recovered
