"""The balance service: every account's state, fresh within the TTL, read through `bot.exchanges`.

`BalanceService(config)` owns the exchange clients, the cache and the fetch loop (`FetchLoop`:
every read runs on one asyncio loop in its own thread, taken from a per-host queue by at most
``_window`` worker tasks; the exchanges' lanes and budgets pace them, `bot.exchanges`). The API is synchronous and thread-safe: a caller waits only for an
account that was never read (or for an explicit `refresh`), at most
``first_read_timeout_seconds`` in all; an account whose cached state expired is served from its
last state while one background read refreshes it (single flight: concurrent callers of one
account share one read, through the cache's flights). Reads start in priority order (accounts
never read, then the oldest) and the budgets spread them over the round; nothing waits on a
caller's thread except for the reads it asked for. It implements `StateView` (`config`,
`current_states`, `subscribe`, `cache_stats`); the manager facade (`bot.app.manager`) adds the
bot's API on top. `budget_report` says what each exchange's limits allow (round time vs TTL,
pauses, throttling). With a ``gate`` (`bot.balances.leases`: one reader per key across
processes) an account is read only while ``gate.may_read`` allows it; the states other
processes read come in through `adopt`.

Locks: ``_listeners_lock`` serialises the changes of ``_listeners`` (a tuple, replaced on change,
so a read's notification iterates a snapshot without taking the lock) and guards ``_closed``.
The cache has its own lock (`BalanceCache`: writers only; readers of cached states take none).
``_tasks`` (the workers), ``_pending`` (reads not started yet, per host budget) and ``_workers``
(workers running, per host) are loop-only (touched only on the fetch loop's thread). Everything
else is immutable after construction.
"""
from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from dataclasses import replace
from decimal import Decimal
from typing import Callable

from bot.balances.cache import MISSING, BalanceCache, Flight
from bot.balances.view import StateListener
from bot.config import AccountConfig, Config
from bot.core.brokers import BrokerType, broker_key
from bot.core.sources import FOLLOWED, FORCED, ON_DEMAND
from bot.core.state import AccountState, Status, sum_known
from bot.exchanges.clients import ExchangeRegistry, build_client
from bot.exchanges.loop import FetchLoop, LoopClosed
from bot.exchanges.reader import blank_state, read_account
from bot.exchanges.report import budget_report

CLOSED_ERROR = "ServiceClosed: the balance service is closed"
CLOSE_TIMEOUT_SECONDS = 5.0

log = logging.getLogger(__name__)


class ServiceClosed(RuntimeError):
    """A read was asked of a service that is closed."""


class BalanceService:
    def __init__(self, config: Config, clock: Callable[[], float] = time.monotonic, time_scale: float = 1.0,
                 gate=None):
        """``clock`` times the cache's TTL (tests pass a controllable one); ``time_scale`` divides
        every duration of the exchanges' limits (for time-scaled fake exchanges); ``gate`` says
        which accounts this process may read (None: all). Builds clients (no I/O)."""
        self.config = config
        self._gate = gate
        settings = self.settings = config.settings
        self._registry = ExchangeRegistry(settings, time_scale=time_scale)
        self._accounts: dict[str, AccountConfig] = {a.account_id: a for a in config.accounts()}
        by_owner: dict[str, tuple[str, ...]] = {}
        by_owner_broker: dict[tuple[str, str], tuple[str, ...]] = {}
        for account in self._accounts.values():
            owner = account.owner
            by_owner[owner] = by_owner.get(owner, ()) + (account.account_id,)
            for name in {account.broker.name.lower(), account.broker.exchange}:
                key = (owner, name)
                by_owner_broker[key] = by_owner_broker.get(key, ()) + (account.account_id,)
        self._by_owner = by_owner
        self._cache = BalanceCache(settings.cache_ttl_seconds, timer=clock, groups=by_owner)
        self._clients = {}
        for account_id, account in self._accounts.items():
            client = build_client(account, self._registry, settings.base_currency)
            if client is None:
                self._cache.pin(blank_state(account, Status.NOT_CONFIGURED, account.broker.missing_credentials))
            else:
                self._clients[account_id] = client
        self._readable = frozenset(self._clients)
        self._by_owner_broker = by_owner_broker
        self._loop = FetchLoop()
        self._host_of = {account_id: getattr(client, "endpoint", None) and client.endpoint.budget
                         for account_id, client in self._clients.items()}
        self._window = max(64, 4 * settings.max_workers)
        self._tasks: set[asyncio.Task] = set()
        self._pending: dict[object, deque] = {}
        self._workers: dict[object, int] = {}
        self._report_logged: set[str] = set()
        self._listeners_lock = threading.Lock()
        self._listeners: tuple[StateListener, ...] = ()
        self._closed = False
        if gate is not None:
            gate.attach(self._registry)
        if not settings.fetch.distributed:  # in distributed mode the workers read, each with its own budgets
            self.budget_report(log_over_budget=True)

    # ------------------------------------------------------------------ StateView

    def current_states(self) -> list[AccountState]:
        """The last state of every account that has one, in configuration order; starts no read."""
        states = self._cache.states()
        return [states[i] for i in self._accounts if i in states]

    def subscribe(self, listener: StateListener) -> Callable[[], None]:
        """Call ``listener(new, previous, source)`` on the fetch loop's thread after every read;
        returns the function that removes it. Listeners must be quick (they hold up every read:
        enqueue, do not do I/O) and must not raise."""
        with self._listeners_lock:
            self._listeners += (listener,)

        def unsubscribe() -> None:
            with self._listeners_lock:
                self._listeners = tuple(x for x in self._listeners if x is not listener)
        return unsubscribe

    def cache_stats(self) -> tuple[int, int]:
        return self._cache.stats()

    # ------------------------------------------------------------------ reading

    def owner_ids(self, owner: str) -> tuple[str, ...]:
        """The account ids of ``owner`` ("master" or a user id); KeyError if it has none."""
        try:
            return self._by_owner[owner]
        except KeyError:
            raise KeyError(f"unknown owner {owner!r}") from None

    def adopt(self, state: AccountState, fresh: bool) -> None:
        """Take ``state``, read by another process, as the account's latest (``fresh``: also
        within the TTL); listeners are told with source ``followed``."""
        self._notify(state, self._cache.adopt(state, fresh), FOLLOWED)

    def _notify(self, state: AccountState, previous: AccountState | None, source: str) -> None:
        for listener in self._listeners:  # a tuple, replaced on change: this iterates one snapshot
            try:
                listener(state, previous, source)
            except Exception:
                log.exception("balance listener failed for %s", state.account_id)

    async def _read_one(self, account_id: str, flight: Flight, source: str) -> None:
        account = self._accounts[account_id]
        previous = self._cache.latest(account_id)
        if self._gate is not None and not self._gate.may_read(account_id):  # another process reads it now
            self._cache.complete(previous or blank_state(account, Status.ERROR, "Pending: read by another process",
                                                         "Pending"))
            return
        started = time.perf_counter()
        try:
            state = await read_account(account, self._clients[account_id], previous, self.settings, started)
        except asyncio.CancelledError:  # close(): end the flight so that no caller waits for it
            self._cache.complete((previous or blank_state(account)).failed(CLOSED_ERROR, "ServiceClosed"))
            raise
        except BaseException as exc:  # read_account does not raise; keep the flight honest anyway
            log.exception("%s: read failed unexpectedly", account_id)
            state = (previous or blank_state(account)).failed(type(exc).__name__, type(exc).__name__)
        finally:
            if self._gate is not None:
                self._gate.read_done(account_id)
        if state.read_seconds is None:  # a failed read (a successful one is timed by read_account)
            state = replace(state, read_seconds=time.perf_counter() - started)
        self._cache.complete(state)  # ends the flight: its waiters wake
        self._notify(state, previous, source)

    def _start_reads(self, started: list[tuple[str, Flight]], source: str) -> None:
        """On the loop: queue the reads per host in the order given; `_spawn` starts workers."""
        hosts = set()
        for account_id, flight in started:
            host = self._host_of.get(account_id)
            self._pending.setdefault(host, deque()).append((account_id, flight, source))
            hosts.add(host)
        for host in hosts:
            self._spawn(host)

    def _spawn(self, host) -> None:
        """Start workers for the queued reads of ``host`` while fewer than ``_window`` of them run
        (each reads queued accounts one after another; the lanes and budgets pace them): memory
        stays bounded at any account count, and a read costs no task of its own."""
        queue = self._pending.get(host)
        if not queue or self._closed:
            return
        loop = asyncio.get_running_loop()
        running = self._workers.get(host, 0)
        wanted = min(self._window, running + len(queue))
        for _ in range(wanted - running):
            task = loop.create_task(self._work(host, queue))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        self._workers[host] = max(running, wanted)

    async def _work(self, host, queue: deque) -> None:
        """One worker of ``host``: read the queued accounts, oldest request first, until none is left."""
        try:
            while queue and not self._closed:
                account_id, flight, source = queue.popleft()
                try:
                    await self._read_one(account_id, flight, source)
                except Exception:  # _read_one ends its flight; a failure elsewhere must not stop the worker
                    log.exception("%s: read failed unexpectedly", account_id)
        finally:
            self._workers[host] -= 1

    def states(self, account_ids: tuple[str, ...], force: bool = False, wait_all: bool = False,
               source: str = ON_DEMAND) -> list[AccountState]:
        """States of ``account_ids``; starts the reads they need; waits for never-read accounts
        (or for every read when ``wait_all``), at most ``first_read_timeout_seconds`` in all."""
        if not force:
            states = self._cache.fresh(account_ids)
            if states is not None:
                return states
        readable = self._readable if self._gate is None else self._gate.readable(self._readable)
        started, waits = self._cache.claim(account_ids, readable, force)
        if started:  # in priority order: never read first, then the oldest
            try:
                self._loop.call_soon(self._start_reads, started, source)
            except LoopClosed:  # closed: end the flights instead of leaving them open
                for account_id, _ in started:
                    self._abandon(account_id)
        timeout = self.settings.first_read_timeout_seconds
        if self._loop.in_loop():  # called back from a listener: the loop cannot wait for itself
            timeout = 0.0
        latest = self._cache.latest_of(waits)
        awaited = {account_id: flight for account_id, flight in waits.items()
                   if wait_all or latest[account_id] is None}
        if awaited:  # one wake-up when all are done (or at the deadline), not one per account
            self._cache.wait(awaited.values(), timeout)
        result = []
        for account_id in account_ids:
            flight = awaited.get(account_id)
            if flight is None:
                result.append(self._cache.latest(account_id) or blank_state(  # followed, none written yet
                    self._accounts[account_id], Status.ERROR, "Pending: not read yet by the process that reads it",
                    "Pending"))
            elif flight.done():
                result.append(flight.result())
            else:
                result.append(latest[account_id] or blank_state(self._accounts[account_id], Status.ERROR,
                                                                f"Pending: first read not finished within {timeout:g} s", "Pending"))
        return result

    def _abandon(self, account_id: str) -> None:
        account = self._accounts[account_id]
        self._cache.complete((self._cache.latest(account_id) or blank_state(account)).failed(CLOSED_ERROR, "ServiceClosed"))

    def refresh(self, force: bool = True, source: str | None = None, owner: str | None = None) -> list[AccountState]:
        """Read every account (``force``) or every account that is not fresh, and wait for it.
        ``owner`` limits the reads to that owner's accounts (KeyError if it has none).
        Raises ServiceClosed after `close`."""
        if self._closed:
            raise ServiceClosed("the balance service is closed")
        ids = tuple(self._accounts) if owner is None else self.owner_ids(owner)
        return self.states(ids, force=force, wait_all=True, source=source or (FORCED if force else ON_DEMAND))

    def account_states(self) -> list[AccountState]:
        """Every enabled account's state, master first, in configuration order (reads started as needed)."""
        return self.states(tuple(self._accounts))

    def balance(self, user_id: str, broker_type: BrokerType | str | None = None) -> Decimal | None:
        """The user's total, or one broker's value (by broker name or exchange id; several
        accounts on one exchange are summed); None when unknown. KeyError for an unknown user
        or a broker the user does not have."""
        if broker_type is None:
            total = self._cache.fresh_total(user_id)  # the trading loop's call: one dict read
            if total is not MISSING:
                return total
            ids = self._by_owner.get(user_id)
        else:
            ids = self._by_owner_broker.get((user_id, broker_key(broker_type)))
        if ids is None:
            if user_id not in self._by_owner:
                raise KeyError(f"unknown user {user_id!r}")
            raise KeyError(f"user {user_id!r} has no broker {broker_key(broker_type)!r}")
        return sum_known(self.states(ids))

    def budget_report(self, log_over_budget: bool = False) -> dict:
        """Per exchange: ``round_seconds`` (estimated time of one round of its accounts within its
        limits), ``ttl_seconds``, ``paused_until`` (time.time(), when a host is paused),
        ``throttled`` {reason: count}. ``log_over_budget``: say once per exchange when a round
        cannot fit in the TTL. Reads a few numbers; never waits for the loop."""
        report = budget_report(self._registry, self.settings.cache_ttl_seconds)
        if log_over_budget:
            for exchange, entry in report.items():
                if entry["round_seconds"] > entry["ttl_seconds"] and exchange not in self._report_logged:
                    self._report_logged.add(exchange)
                    log.warning("%s: one round of its %d accounts needs about %d s within the exchange's limits "
                                "from one address, longer than the %g s cache TTL; reads are paced, never burst "
                                "(spread the accounts over several addresses: fetch.source_address, distributed "
                                "mode)", exchange, entry["accounts"], entry["round_seconds"], entry["ttl_seconds"])
        return report

    def close(self) -> None:
        """Cancel the reads in flight (they end as failed with ``ServiceClosed``), close the
        exchange connections and stop the fetch loop, within a few seconds. Later refreshes
        raise ServiceClosed."""
        with self._listeners_lock:
            self._closed = True
        self._loop.close(CLOSE_TIMEOUT_SECONDS, shutdown=self._registry.aclose)
        self._cache.abandon_inflight(lambda account_id: (self._cache.latest(account_id)
                                                         or blank_state(self._accounts[account_id])
                                                         ).failed(CLOSED_ERROR, "ServiceClosed"))
