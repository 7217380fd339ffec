"""The manager: every account's balance, fresh within the TTL, for the bot, the views and the API.

``MultiAccountBrokerManager(config=None, config_dir=None)`` does no I/O when built; the
configuration is read on first use. Reads run on a bounded pool of fetch workers; a caller
waits only for an account that was never read (or for an explicit ``refresh``): an account
whose cached state expired is served from its last state while one background read refreshes
it. All public methods are thread-safe.

The module-level ``multi_account_broker_manager`` is such a manager on the default
configuration directory (``$BALANCES_CONFIG`` or ``./config``); importing this module does no I/O.
"""
from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor, TimeoutError as FutureTimeout
from dataclasses import replace
from decimal import Decimal
from typing import Callable

from bot.exchanges.reader import blank_state, read_account
from bot.core.state import AccountState, Status, sum_known
from bot.balances.cache import BalanceCache
from bot.core.brokers import BrokerType, broker_key
from bot.exchanges.clients import ExchangeRegistry, build_client
from bot.config import MASTER_OWNER, AccountConfig, Config, ConfigError, load_config
from bot.history.recorder import HistoryRecorder
from bot.app.scheduler import BalanceScheduler
from bot.store import BalanceStore, TradeIn, default_database_url

log = logging.getLogger(__name__)

StateListener = Callable[[AccountState, "AccountState | None", str], None]

# Why a read happened (the snapshot sources of the history store).
ON_DEMAND, FORCED, SCHEDULED = "account_sync", "manual_sync", "scheduled_sync"


def open_store(config: Config) -> BalanceStore:
    """The history store of ``config``; an unusable ``database_url`` is a configuration error."""
    url = config.settings.database_url or default_database_url(config.directory)
    try:
        return BalanceStore(url)
    except Exception as exc:
        raise ConfigError(f"{config.directory / 'settings.json'}: field 'database_url': "
                          f"cannot open the database ({type(exc).__name__})") from None


class MultiAccountBrokerManager:
    def __init__(self, config: Config | None = None, config_dir: str | None = None, clock=time.monotonic,
                 history: bool = True):
        """``clock`` times the cache's TTL (tests pass a controllable one); ``history`` records
        snapshots and daily closes in the store (``settings.database_url``, default an SQLite
        file in the configuration directory)."""
        self._clock = clock
        self._config = config
        self._config_dir = config_dir
        self._want_history = history
        self._setup_lock = threading.RLock()  # guards the one-time set-up, `_listeners`, `_trade_listeners`, `_closers`, `_scheduler`
        self._ready = False
        self._listeners: list[StateListener] = []
        self._trade_listeners: list[Callable[[int, TradeIn], None]] = []
        self._closers: list[Callable[[], None]] = []
        self._history = None
        self._scheduler = None

    # ------------------------------------------------------------------ set-up

    def _ensure_ready(self) -> None:
        if self._ready:
            return
        with self._setup_lock:
            if self._ready:
                return
            config = self._config or load_config(self._config_dir)
            settings = config.settings
            self._config = config
            self._settings = settings
            self._registry = ExchangeRegistry(settings)
            self._accounts: dict[str, AccountConfig] = {a.account_id: a for a in config.accounts()}
            self._cache = BalanceCache(settings.cache_ttl_seconds, maxsize=max(16, 2 * len(self._accounts)),
                                       timer=self._clock)
            self._clients = {}
            for account_id, account in self._accounts.items():
                client = build_client(account, self._registry, settings.base_currency)
                if client is None:
                    self._cache.pin(blank_state(account, Status.NOT_CONFIGURED, account.broker.missing_credentials))
                else:
                    self._clients[account_id] = client
            self._readable = set(self._clients)
            self._by_owner: dict[str, tuple[str, ...]] = {}
            self._by_owner_broker: dict[tuple[str, str], tuple[str, ...]] = {}
            for account in self._accounts.values():
                owner = account.owner
                self._by_owner[owner] = self._by_owner.get(owner, ()) + (account.account_id,)
                for name in {account.broker.name.lower(), account.broker.exchange}:
                    key = (owner, name)
                    self._by_owner_broker[key] = self._by_owner_broker.get(key, ()) + (account.account_id,)
            self._executor = ThreadPoolExecutor(max_workers=settings.max_workers, thread_name_prefix="balance-fetch")
            if self._want_history:
                self._history = HistoryRecorder(self, open_store(config), settings).start()
            self._ready = True

    def open(self) -> MultiAccountBrokerManager:
        """Set up now (read the configuration, open the history store) instead of on first use.
        Raises ConfigError."""
        self._ensure_ready()
        return self

    @property
    def config(self) -> Config:
        self._ensure_ready()
        return self._config

    def add_listener(self, listener: StateListener) -> None:
        """Call ``listener(new_state, previous_state, source)`` on a fetch worker after every read
        (``source``: account_sync, manual_sync or scheduled_sync). Listeners must be quick."""
        with self._setup_lock:
            self._listeners.append(listener)

    def add_trade_listener(self, listener: Callable[[int, TradeIn], None]) -> None:
        """Call ``listener(trade_id, trade)`` after `record_trade` stored a trade (on the caller's thread)."""
        with self._setup_lock:
            self._trade_listeners.append(listener)

    def on_close(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` in `close`, after the last read finished and before the history
        store is closed (for parts attached to the manager, e.g. the monitoring system)."""
        with self._setup_lock:
            self._closers.append(callback)

    @property
    def history(self) -> HistoryRecorder | None:
        """The history recorder (snapshots, daily closes), or None when history is off."""
        self._ensure_ready()
        return self._history

    def start_scheduler(self) -> BalanceScheduler:
        """Start the background jobs (refresh every TTL, hourly log, midnight close, pruning) once."""
        self._ensure_ready()
        with self._setup_lock:
            if self._scheduler is None:
                self._scheduler = BalanceScheduler(self, self._history)
                self._scheduler.start()
            return self._scheduler

    @property
    def scheduler(self) -> BalanceScheduler | None:
        """The background jobs once `start_scheduler` ran, else None (for health checks)."""
        with self._setup_lock:
            return self._scheduler

    def close(self) -> None:
        """Stop the scheduler and the fetch workers (reads in progress finish), write the
        history still queued, and close connections."""
        if not self._ready:
            return
        if self._scheduler is not None:
            self._scheduler.shutdown()
        self._executor.shutdown(wait=True, cancel_futures=True)
        with self._setup_lock:
            closers, self._closers = self._closers, []
        for closer in closers:
            try:
                closer()
            except Exception:
                log.exception("closing %r failed", closer)
        if self._history is not None:
            self._history.stop()
            self._history.store.close()
        self._registry.close()

    # ------------------------------------------------------------------ reading

    def _read_one(self, account_id: str, future: Future, source: str) -> None:
        account = self._accounts[account_id]
        previous = self._cache.latest(account_id)
        started = time.perf_counter()
        try:
            state = read_account(account, self._clients[account_id], previous, self._settings)
        except BaseException as exc:  # read_account does not raise; keep the flight honest anyway
            state = (previous or blank_state(account)).failed(type(exc).__name__)
        state = replace(state, read_seconds=time.perf_counter() - started)
        self._cache.complete(state)
        future.set_result(state)
        for listener in list(self._listeners):
            try:
                listener(state, previous, source)
            except Exception:
                log.exception("balance listener failed for %s", account_id)

    def _states(self, account_ids: tuple[str, ...], force: bool = False, wait_all: bool = False,
                source: str = ON_DEMAND) -> list[AccountState]:
        """States of ``account_ids``; starts the reads they need; waits for never-read accounts
        (or for every read when ``wait_all``)."""
        if not force:
            states = self._cache.fresh(account_ids)
            if states is not None:
                return states
        started, waits = self._cache.claim(account_ids, self._readable, force)
        for account_id, future in started:
            self._executor.submit(self._read_one, account_id, future, source)
        timeout = self._settings.first_read_timeout_seconds
        result = []
        for account_id in account_ids:
            state = self._cache.latest(account_id)
            future = waits.get(account_id)
            if future is not None and (state is None or wait_all):
                try:
                    state = future.result(timeout=timeout)
                except FutureTimeout:
                    state = state or blank_state(self._accounts[account_id], Status.ERROR,
                                                 f"Pending: first read not finished within {timeout:g} s")
            result.append(state)
        return result

    def refresh(self, force: bool = True, source: str | None = None, owner: str | None = None) -> list[AccountState]:
        """Read every account (``force``) or every account that is not fresh, and wait for it.
        ``source`` labels the reads for history (default manual_sync when forced, else account_sync).
        ``owner`` ("master" or a user id) limits the reads to that owner's accounts (KeyError if
        it has none)."""
        self._ensure_ready()
        source = source or (FORCED if force else ON_DEMAND)
        if owner is None:
            ids = tuple(self._accounts)
        elif owner in self._by_owner:
            ids = self._by_owner[owner]
        else:
            raise KeyError(f"unknown owner {owner!r}")
        return self._states(ids, force=force, wait_all=True, source=source)

    def current_states(self) -> list[AccountState]:
        """The last state of every account, without starting any read (for history and views)."""
        self._ensure_ready()
        states = self._cache.states()
        return [states[i] for i in self._accounts if i in states]

    def cache_stats(self) -> tuple[int, int]:
        """(hits, misses) of the cache's fresh lookups so far (for metrics); no I/O."""
        self._ensure_ready()
        return self._cache.stats()

    def account_states(self) -> list[AccountState]:
        """Every enabled account's state, master first, in configuration order."""
        self._ensure_ready()
        return self._states(tuple(self._accounts))

    # ------------------------------------------------------------------ the bot's API

    def get_user_balance(self, user_id: str, broker_type: BrokerType | str | None = None) -> Decimal | None:
        """The user's total in the base currency, or one broker's value (by broker name or
        exchange id; several accounts on one exchange are summed). None when unknown.
        Raises KeyError for an unknown user or a broker the user does not have."""
        self._ensure_ready()
        if broker_type is None:
            ids = self._by_owner.get(user_id)
        else:
            ids = self._by_owner_broker.get((user_id, broker_key(broker_type)))
        if ids is None:
            if user_id not in self._by_owner:
                raise KeyError(f"unknown user {user_id!r}")
            raise KeyError(f"user {user_id!r} has no broker {broker_key(broker_type)!r}")
        states = self._states(ids)  # the cache's fresh states, or reads started for the rest
        return sum_known(states)

    def get_all_balances(self) -> dict:
        """``{"master": {broker: value}, "users": {user_id: {broker: value}}}``; values Decimal or None."""
        result: dict = {"master": {}, "users": {}}
        for state in self.account_states():
            if state.owner == MASTER_OWNER:
                result["master"][state.broker] = state.value
            else:
                result["users"].setdefault(state.owner, {})[state.broker] = state.value
        return result

    def get_user_balance_summary(self) -> list[dict]:
        """One entry per enabled user, highest total first (unknown totals last)."""
        states = self.account_states()
        summary = []
        for user in self._config.enabled_users():
            own = [s for s in states if s.owner == user.user_id]
            summary.append({
                "user_id": user.user_id,
                "name": user.name,
                "total": sum_known(own),
                "brokers": {s.broker: s.value for s in own},
                "status": {s.broker: s.status.value for s in own},
            })
        summary.sort(key=lambda u: (u["total"] is None, -(u["total"] or 0), u["user_id"]))
        return summary

    def record_trade(self, user_id: str, broker: str, symbol: str, side: str, amount, price, pnl=None, fee=None,
                     timestamp=None) -> int:
        """Journal a trade of a configured user in the history store; return its id.

        ``side`` "buy" or "sell"; ``amount`` and ``price`` positive (Decimal, int or decimal
        string; floats are refused as inexact); ``pnl`` the realised P&L in the base currency when
        the trade closed a position (None while open), ``fee`` likewise optional; ``timestamp``
        an aware datetime or epoch seconds (default now). Raises KeyError for an unknown user,
        ValueError for a bad value, RuntimeError when history is off. See `bot.history.journal` for the
        figures (win rate, daily and total P&L)."""
        from bot.history.journal import make_trade
        self._ensure_ready()
        if not any(u.user_id == user_id for u in self._config.users):
            raise KeyError(f"unknown user {user_id!r}")
        if self._history is None:
            raise RuntimeError("record_trade needs the history store (history=True)")
        trade = make_trade(user_id, broker, symbol, side, amount, price, pnl, fee, timestamp)
        trade_id = self._history.store.add_trade(trade)
        for listener in list(self._trade_listeners):
            try:
                listener(trade_id, trade)
            except Exception:
                log.exception("trade listener failed for %s", user_id)
        return trade_id

    def get_status_report(self) -> str:
        """The terminal report (see ``bot.views.report``) from the current states."""
        from bot.views.report import build_report, render_table
        return render_table(build_report(self))

    def log_all_balances(self) -> None:
        """Log one line per account and the totals (INFO; stale/error accounts as WARNING)."""
        from bot.views.report import build_report, format_money
        report = build_report(self)
        base = report.base_currency
        for state in report.states:
            level = logging.INFO if state.status in (Status.OK, Status.NOT_CONFIGURED) else logging.WARNING
            log.log(level, "balance %s %s %s%s", state.account_id, state.status.value, format_money(state.value, base),
                    f" ({state.error})" if state.error else "")
        log.info("balances: master %s, %d users, user capital %s", format_money(report.master_total, base),
                 report.user_count, format_money(report.total_user_capital, base))


multi_account_broker_manager = MultiAccountBrokerManager()
