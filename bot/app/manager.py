"""The manager facade: the bot's API over one configuration, wiring the balance service, the
history, the scheduler and the trade journal.

``MultiAccountBrokerManager(config=None, config_dir=None)`` does no I/O when built; the
configuration is read on first use. Reads are the `BalanceService`'s (`bot.balances.service`):
a caller waits only for an account that was never read (or for an explicit ``refresh``). The
manager is a `StateView` too (it delegates to the service), so views can be handed either.
All public methods are thread-safe.

With history on, the process takes part in the shared truth of every process on the store
(`bot.app.truth`): it reads the API keys whose leases it holds (``role``: the settings'
``fetch.role`` unless given) and follows the states the others read. In distributed mode
(``fetch.mode``) it reads nothing: its refreshes are jobs for the workers (`bot.distributed`),
and the process that runs the scheduler records the history of what they read.

The module-level ``multi_account_broker_manager`` is such a manager on the default
configuration directory (``$BALANCES_CONFIG`` or ``./config``); importing this module does no I/O.

Locks: ``_setup_lock`` guards the one-time set-up, ``_trade_listeners``, ``_closers`` and
``_scheduler`` (the follower thread's `_record_followed` reads that one reference without it);
``_ready`` and ``_owner_index`` are written once under it (read without it).
"""
from __future__ import annotations

import logging
import threading
import time
from decimal import Decimal
from typing import Callable

from bot.balances.service import BalanceService
from bot.balances.view import StateListener
from bot.config import Config, ConfigError, Settings, load_config
from bot.core.brokers import BrokerType
from bot.core.sources import FORCED, ON_DEMAND, SCHEDULED
from bot.core.state import AccountState
from bot.history.recorder import HistoryRecorder
from bot.app.scheduler import BalanceScheduler
from bot.app.summaries import OwnerIndex
from bot.app.truth import SharedTruth
from bot.store import BalanceStore, TradeIn, default_database_url
from bot.store.engine import StoreOpenError

log = logging.getLogger(__name__)
report_log = logging.getLogger("bot.balances")

# Written to only when the application configured no logging at all (see log_all_balances).
_fallback_handler = logging.StreamHandler()
_fallback_handler.setFormatter(logging.Formatter("%(message)s"))


def open_store(config: Config) -> BalanceStore:
    """The history store of ``config``; an unusable ``database_url`` is a configuration error
    that names the reason (e.g. connection refused)."""
    url = config.settings.database_url or default_database_url(config.directory)
    try:
        return BalanceStore(url)
    except Exception as exc:
        raise ConfigError(f"{config.directory / 'settings.json'}: field 'database_url': "
                          f"cannot open the database: {_reason(exc)}") from exc


def _reason(exc: BaseException) -> str:
    """The innermost cause's first line (the driver's own words), without the class path noise."""
    if isinstance(exc, StoreOpenError):  # already one line naming the file or URL and the reason
        return str(exc)
    while exc.__cause__ is not None or getattr(exc, "orig", None) is not None:
        exc = getattr(exc, "orig", None) or exc.__cause__
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = lines[0] if lines else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class MultiAccountBrokerManager:
    def __init__(self, config: Config | None = None, config_dir: str | None = None, clock=time.monotonic,
                 history: bool = True, role: str | None = None, now=None):
        """``clock`` times the cache's TTL (tests pass a controllable one); ``history`` records
        snapshots and daily closes in the store (``settings.database_url``, default an SQLite
        file in the configuration directory); ``role`` (reader | auto | follower) overrides
        ``fetch.role``; ``now`` is the history's wall clock (tests move midnight)."""
        self._role = role
        self._now = now
        self._truth: SharedTruth | None = None
        self._clock = clock
        self._config = config
        self._config_dir = config_dir
        self._want_history = history
        self._setup_lock = threading.RLock()
        self._ready = False
        self._trade_listeners: list[Callable[[int, TradeIn], None]] = []
        self._closers: list[Callable[[], None]] = []
        self._service: BalanceService | None = None
        self._history: HistoryRecorder | None = None
        self._scheduler: BalanceScheduler | None = None
        self._owner_index: OwnerIndex | None = None  # written once under _setup_lock

    # ------------------------------------------------------------------ set-up

    def _ensure_ready(self) -> BalanceService:
        if self._ready:
            return self._service
        with self._setup_lock:
            if not self._ready:
                config = self._config or load_config(self._config_dir)
                store = open_store(config) if self._want_history else None
                truth = None if store is None else SharedTruth(config, store, self._role or config.settings.fetch.role)
                service = BalanceService(config, clock=self._clock, gate=None if truth is None else truth.keeper)
                try:
                    if store is not None:
                        truth.start(service)
                        clock = {} if self._now is None else {"now": self._now}
                        self._history = HistoryRecorder(service, store, config.settings, refresh=self._scheduled_refresh,
                                                        closer=truth.is_closer, **clock).start()
                        truth.keeper.on_closer = self._history.finalize_missed_days
                        truth.keeper.closer_done()
                        if truth.fleet is not None:
                            truth.shared.subscribe_rows(self._record_followed)
                except BaseException:
                    service.close()
                    if store is not None:
                        truth.close()
                        store.close()
                    raise
                self._config, self._service, self._truth = config, service, truth
                self._ready = True
        return self._service

    def open(self) -> MultiAccountBrokerManager:
        """Set up now (read the configuration, open the history store) instead of on first use.
        Raises ConfigError."""
        self._ensure_ready()
        return self

    @property
    def config(self) -> Config:
        self._ensure_ready()
        return self._config

    @property
    def settings(self) -> Settings:
        return self.config.settings

    @property
    def service(self) -> BalanceService:
        """The balance service (the `StateView` of this process's reads)."""
        return self._ensure_ready()

    def subscribe(self, listener: StateListener) -> Callable[[], None]:
        """Call ``listener(new_state, previous_state, source)`` on the fetch loop's thread after every read
        (``source``: see `bot.core.sources`); returns the function that unsubscribes."""
        return self._ensure_ready().subscribe(listener)

    def add_listener(self, listener: StateListener) -> None:
        """`subscribe` without the handle (kept for callers of the earlier API)."""
        self.subscribe(listener)

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
    def truth(self) -> SharedTruth | None:
        """This process's part in the shared truth (None when history is off)."""
        self._ensure_ready()
        return self._truth

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
                self._scheduler = BalanceScheduler(self._config.settings, refresh=self._scheduled_refresh,
                                                   log_balances=self.log_all_balances, recorder=self._history)
                self._scheduler.start()
                if self._truth is not None:
                    self._truth.keeper.keep_closer()  # this process closes the days (if it gets the lease)
                    if self._truth.fleet is not None:
                        self._truth.fleet.start_recovery()  # jobs of dead workers go back to the queue
            return self._scheduler

    @property
    def scheduler(self) -> BalanceScheduler | None:
        """The background jobs once `start_scheduler` ran, else None (for health checks)."""
        with self._setup_lock:
            return self._scheduler

    def close(self) -> None:
        """Stop the scheduler and the fetch loop (reads in progress are cancelled: they end as
        ``ServiceClosed``), write the history still queued, and close connections. Idempotent."""
        with self._setup_lock:
            if not self._ready:
                return
            scheduler, self._scheduler = self._scheduler, None
            closers, self._closers = self._closers, []
        if scheduler is not None:
            scheduler.shutdown()
        self._service.close()
        for closer in closers:
            try:
                closer()
            except Exception:
                log.exception("closing %r failed", closer)
        if self._truth is not None:
            self._truth.close()
        if self._history is not None:
            self._history.stop()
            self._history.store.close()

    def _record_followed(self, row, previous) -> None:
        """Distributed mode: the process that runs the scheduler and closes the days records the
        history of what the workers read (they record none)."""
        truth = self._truth
        if self._scheduler is not None and truth.keeper.closer and row.reader != truth.identity:
            self._history.record(row.state, row.source or SCHEDULED)

    # ------------------------------------------------------------------ reading (StateView + the bot's reads)

    def _scheduled_refresh(self) -> list[AccountState]:
        return self.refresh(force=True, source=SCHEDULED)

    def refresh(self, force: bool = True, source: str | None = None, owner: str | None = None) -> list[AccountState]:
        """Read every account (``force``) or every account that is not fresh, and wait for it.
        ``source`` labels the reads for history (default manual_sync when forced, else account_sync).
        ``owner`` ("master" or a user id) limits the reads to that owner's accounts (KeyError if
        it has none). Accounts another process reads: see `SharedTruth.refresh`."""
        service, source = self._ensure_ready(), source or (FORCED if force else ON_DEMAND)
        if self._truth is not None:
            return self._truth.refresh(force, source, owner)
        return service.refresh(force=force, source=source, owner=owner)

    def current_states(self) -> list[AccountState]:
        """The last state of every account, without starting any read (for history and views)."""
        return self._ensure_ready().current_states()

    def cache_stats(self) -> tuple[int, int]:
        """(hits, misses) of the cache's fresh lookups so far (for metrics); no I/O."""
        return self._ensure_ready().cache_stats()

    def account_states(self) -> list[AccountState]:
        """Every enabled account's state, master first, in configuration order (starts the
        reads that are due; waits only for accounts never read)."""
        return self._ensure_ready().account_states()

    # ------------------------------------------------------------------ the bot's API

    def get_user_balance(self, user_id: str, broker_type: BrokerType | str | None = None) -> Decimal | None:
        """The user's total in the base currency, or one broker's value (by broker name or
        exchange id; several accounts on one exchange are summed). None when unknown.
        Raises KeyError for an unknown user or a broker the user does not have."""
        return self._ensure_ready().balance(user_id, broker_type)

    def get_all_balances(self) -> dict:
        """``{"master": {broker: value}, "users": {user_id: {broker: value}}}``; values Decimal or None.
        From the owner index (`bot.app.summaries`): reads that are due are started, never-read
        accounts waited for, and only the owners read since the last call are recomputed."""
        return self._summaries().balances()

    def get_user_balance_summary(self) -> dict:
        """The guide's summary: ``user_count``, ``total_capital`` (sum of the known user totals),
        ``average_balance`` (over the users whose total is known), ``users`` highest total first
        (unknown totals last), each ``{user_id, total, brokers}``. Decimals; None where unknown.
        From the owner index, like `get_all_balances`."""
        return self._summaries().summary()

    def _summaries(self) -> OwnerIndex:
        """The owner index (made on first use), after starting the reads that are due and waiting
        for never-read accounts, as `account_states` does (which it calls only then)."""
        index = self._owner_index
        if index is None:
            service = self._ensure_ready()
            with self._setup_lock:
                if self._owner_index is None:
                    self._owner_index = OwnerIndex(service, self._config.settings.cache_ttl_seconds, self._clock)
                index = self._owner_index
        if index.due():
            self.account_states()
            index.reads_started(self.current_states())
        return index

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
        """The terminal report (see `bot.views.report`) of the accounts' states (reads that are
        due are started first; never-read accounts are waited for)."""
        from bot.views.report import build_report, render_table
        self.account_states()
        return render_table(build_report(self))

    def log_all_balances(self) -> None:
        """Log the formatted report (`get_status_report`) as one multi-line INFO record of the
        ``bot.balances`` logger; when the application configured no logging at all, it is
        written to stderr anyway, as the guide promises ("logs to console")."""
        text = "\n" + self.get_status_report()
        if report_log.hasHandlers():
            report_log.info(text)
        else:
            _fallback_handler.handle(report_log.makeRecord(report_log.name, logging.INFO, __file__, 0, text, (), None))


multi_account_broker_manager = MultiAccountBrokerManager()
