"""The balance service: every account's state, fresh within the TTL, read through `bot.exchanges`.

`BalanceService(config)` owns the exchange clients, the cache and a bounded pool of fetch
workers. A caller waits only for an account that was never read (or for an explicit
`refresh`); an account whose cached state expired is served from its last state while one
background read refreshes it (single flight: concurrent callers of one account share one read).
It implements `StateView` (`config`, `current_states`, `subscribe`, `cache_stats`); the manager
facade (`bot.app.manager`) adds the bot's API on top.

Locks: ``_listeners_lock`` guards ``_listeners`` (a tuple replaced on change, so a read's
notification iterates a snapshot without holding the lock) and ``_closed``. The cache has its
own lock (`BalanceCache`). Everything else is immutable after construction.
"""
from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor, TimeoutError as FutureTimeout
from dataclasses import replace
from decimal import Decimal
from typing import Callable

from bot.balances.cache import BalanceCache
from bot.balances.view import StateListener
from bot.config import AccountConfig, Config
from bot.core.brokers import BrokerType, broker_key
from bot.core.sources import FORCED, ON_DEMAND
from bot.core.state import AccountState, Status, sum_known
from bot.exchanges.clients import ExchangeRegistry, build_client
from bot.exchanges.reader import blank_state, read_account

log = logging.getLogger(__name__)


class ServiceClosed(RuntimeError):
    """A read was asked of a service that is closed."""


class BalanceService:
    def __init__(self, config: Config, clock: Callable[[], float] = time.monotonic):
        """``clock`` times the cache's TTL (tests pass a controllable one). Builds clients (no I/O)."""
        self.config = config
        settings = self.settings = config.settings
        self._registry = ExchangeRegistry(settings)
        self._accounts: dict[str, AccountConfig] = {a.account_id: a for a in config.accounts()}
        self._cache = BalanceCache(settings.cache_ttl_seconds, maxsize=max(16, 2 * len(self._accounts)), timer=clock)
        self._clients = {}
        for account_id, account in self._accounts.items():
            client = build_client(account, self._registry, settings.base_currency)
            if client is None:
                self._cache.pin(blank_state(account, Status.NOT_CONFIGURED, account.broker.missing_credentials))
            else:
                self._clients[account_id] = client
        self._readable = frozenset(self._clients)
        by_owner: dict[str, tuple[str, ...]] = {}
        by_owner_broker: dict[tuple[str, str], tuple[str, ...]] = {}
        for account in self._accounts.values():
            owner = account.owner
            by_owner[owner] = by_owner.get(owner, ()) + (account.account_id,)
            for name in {account.broker.name.lower(), account.broker.exchange}:
                key = (owner, name)
                by_owner_broker[key] = by_owner_broker.get(key, ()) + (account.account_id,)
        self._by_owner = by_owner
        self._by_owner_broker = by_owner_broker
        self._executor = ThreadPoolExecutor(max_workers=settings.max_workers, thread_name_prefix="balance-fetch")
        self._listeners_lock = threading.Lock()
        self._listeners: tuple[StateListener, ...] = ()
        self._closed = False

    # ------------------------------------------------------------------ StateView

    def current_states(self) -> list[AccountState]:
        """The last state of every account that has one, in configuration order; starts no read."""
        states = self._cache.states()
        return [states[i] for i in self._accounts if i in states]

    def subscribe(self, listener: StateListener) -> Callable[[], None]:
        """Call ``listener(new, previous, source)`` on the fetch worker after every read; returns
        the function that removes it. Listeners must be quick and must not raise."""
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

    def _read_one(self, account_id: str, future: Future, source: str) -> None:
        account = self._accounts[account_id]
        previous = self._cache.latest(account_id)
        started = time.perf_counter()
        try:
            state = read_account(account, self._clients[account_id], previous, self.settings)
        except BaseException as exc:  # read_account does not raise; keep the flight honest anyway
            log.exception("%s: read failed unexpectedly", account_id)
            state = (previous or blank_state(account)).failed(type(exc).__name__, type(exc).__name__)
        state = replace(state, read_seconds=time.perf_counter() - started)
        self._cache.complete(state)
        future.set_result(state)
        with self._listeners_lock:
            listeners = self._listeners
        for listener in listeners:
            try:
                listener(state, previous, source)
            except Exception:
                log.exception("balance listener failed for %s", account_id)

    def states(self, account_ids: tuple[str, ...], force: bool = False, wait_all: bool = False,
               source: str = ON_DEMAND) -> list[AccountState]:
        """States of ``account_ids``; starts the reads they need; waits for never-read accounts
        (or for every read when ``wait_all``), at most ``first_read_timeout_seconds`` in all."""
        if not force:
            states = self._cache.fresh(account_ids)
            if states is not None:
                return states
        started, waits = self._cache.claim(account_ids, self._readable, force)
        for account_id, future in started:
            try:
                self._executor.submit(self._read_one, account_id, future, source)
            except RuntimeError:  # the pool is shut down: end the flight instead of leaving it open
                self._abandon(account_id, future)
        timeout = self.settings.first_read_timeout_seconds
        deadline = time.monotonic() + timeout
        result = []
        for account_id in account_ids:
            state = self._cache.latest(account_id)
            future = waits.get(account_id)
            if future is not None and (state is None or wait_all):
                try:
                    state = future.result(timeout=max(0.0, deadline - time.monotonic()))
                except FutureTimeout:
                    state = state or blank_state(self._accounts[account_id], Status.ERROR,
                                                 f"Pending: first read not finished within {timeout:g} s", "Pending")
            result.append(state)
        return result

    def _abandon(self, account_id: str, future: Future) -> None:
        account = self._accounts[account_id]
        state = (self._cache.latest(account_id) or blank_state(account)).failed("ServiceClosed: the balance service is closed",
                                                                                "ServiceClosed")
        self._cache.complete(state)
        future.set_result(state)

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
            ids = self._by_owner.get(user_id)
        else:
            ids = self._by_owner_broker.get((user_id, broker_key(broker_type)))
        if ids is None:
            if user_id not in self._by_owner:
                raise KeyError(f"unknown user {user_id!r}")
            raise KeyError(f"user {user_id!r} has no broker {broker_key(broker_type)!r}")
        return sum_known(self.states(ids))

    def close(self) -> None:
        """Stop the fetch workers (reads in progress finish, queued ones end as failed) and
        close the exchange connections. Later refreshes raise ServiceClosed."""
        with self._listeners_lock:
            self._closed = True
        self._executor.shutdown(wait=True, cancel_futures=True)
        self._cache.abandon_inflight(lambda account_id: (self._cache.latest(account_id)
                                                         or blank_state(self._accounts[account_id])
                                                         ).failed("ServiceClosed: the balance service is closed",
                                                                  "ServiceClosed"))
        self._registry.close()
