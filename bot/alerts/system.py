"""Balance alerts: BALANCE_LOW, BALANCE_DROP and ACCOUNT_ERROR over the reads of a `StateView`,
delivered to the log, the store's alert log, subscribers, webhooks and Prometheus Alertmanager.

``get_monitoring_system(source)`` returns the `MonitoringSystem` attached to ``source`` (a
StateView, usually the manager), attaching one on first call: one per source. Attaching reads the
``alerts`` settings, reopens the alerts the store's log says are still firing, loads the drop
windows from the history snapshots (one query), subscribes to the view and starts the threads.
Closing the manager stops it (`stop`).

Data flow: the fetch loop calls the listener after every read; it only enqueues
(state, time). One worker thread ("alert-monitor") owns the rules (`bot.alerts.rules`),
evaluates each read in order, logs each notification and hands it to every sink
(`bot.alerts.delivery`): each sink delivers on its own thread, so no receiver delays a read,
the evaluation or another receiver. Nothing here ever calls an exchange.

Rules, settings and the webhook body: `bot.alerts.rules`, `bot.config.alerts`,
`bot.alerts.model` (decimals are sent as strings).

Locks: ``_registry_lock`` guards ``_systems``; in a system, ``_counts_lock`` guards ``_fired``
and ``_memory`` (the recent alerts kept when there is no store), ``_life_lock`` guards the change
of ``_stopped`` (a bool, read without it). The engine is touched only by the worker thread.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from typing import Callable

from bot.core.state import AccountState, Status
from bot.alerts.delivery import AlertmanagerSink, CallbackSink, Sink, StoreSink, WebhookSink, to_record
from bot.alerts.model import FIRING, AlertEvent, AlertLevel, AlertType, utc
from bot.alerts.rules import AlertEngine
from bot.core.queues import next_batch
from bot.config.alerts import AlertSettings
from bot.balances.view import StateView
from bot.store import Alert, BalanceStore

__all__ = ["AlertEvent", "AlertLevel", "AlertType", "MonitoringSystem", "get_monitoring_system"]

log = logging.getLogger(__name__)

_LOG_LEVELS = {AlertLevel.INFO: logging.INFO, AlertLevel.WARNING: logging.WARNING,
               AlertLevel.CRITICAL: logging.CRITICAL}
_STOP = object()
MEMORY_LOG = 1000  # recent alerts kept in memory when the manager has no store
PACE_SECONDS = 0.05  # the worker's pause between batches (alerts are at most this much later)


class _Flush:
    """Put in the worker's queue: set (with the open alerts at that point) once reached."""

    __slots__ = ("done", "open")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.open: set = set()


class MonitoringSystem:
    """Alert rules fed by the reads of a `StateView`, and their delivery (see the module docstring).

    ``source`` is the StateView (usually the manager facade: then its history store is used and
    closing it stops the system); ``store`` overrides that store. ``clock`` (epoch seconds,
    default ``time.time``) times cooldowns, drop windows and timestamps; tests pass a controllable one.
    """

    def __init__(self, source, clock: Callable[[], float] = time.time, settings: AlertSettings | None = None,
                 store: BalanceStore | None = None):
        with _attach_lock:
            if _attached(source) is not None:
                raise RuntimeError("this manager already has a monitoring system (use get_monitoring_system)")
            self._attach(source, clock, settings, store)

    def _attach(self, source, clock, settings, store) -> None:
        if hasattr(source, "open"):
            source.open()  # the manager facade: read the configuration, open the store now
        view: StateView = source
        config = view.config
        self._source = source
        self._clock = clock
        self._settings = settings or config.settings.alerts
        history = getattr(source, "history", None)
        self._store = store if store is not None else (history.store if history is not None else None)
        not_configured = {s.account_id for s in view.current_states() if s.status is Status.NOT_CONFIGURED}
        owners: dict[str, list[str]] = {}
        for account in config.accounts():
            if account.account_id not in not_configured:
                owners.setdefault(account.owner, []).append(account.account_id)
        self._engine = AlertEngine(self._settings, owners, config.settings.base_currency)
        self._counts_lock = threading.Lock()
        self._fired = {t.value: 0 for t in AlertType}
        self._memory: deque[Alert] = deque(maxlen=MEMORY_LOG)
        self._remembered = 0
        self._life_lock = threading.Lock()
        self._stopped = False
        if self._store is not None:
            self._load_state(owners)

        self._subscribers = CallbackSink()
        self._sinks: list[Sink] = [self._subscribers]
        if self._store is not None:
            self._sinks.append(StoreSink(self._store))
        for index, hook in enumerate(self._settings.webhooks):
            self._sinks.append(WebhookSink(hook, self._settings, index))
        if self._settings.alertmanager_url:
            self._sinks.append(AlertmanagerSink(self._settings, self._firing_ttl()))
        for sink in self._sinks:
            sink.start()
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._pace = threading.Event()  # set by flush/stop: the worker skips its pause
        self._thread = threading.Thread(target=self._run, name="alert-monitor", daemon=True)
        self._thread.start()
        with _registry_lock:
            _systems[source] = self
        self._unsubscribe = view.subscribe(self._on_state)
        if hasattr(source, "on_close"):
            source.on_close(self.stop)

    def _load_state(self, owners) -> None:
        """Reopen the alerts still firing in the log; fill the drop windows from the snapshots."""
        reopened = self._engine.restore(self._store.open_alerts())
        rules = [self._settings.rules] + list(self._settings.user_rules.values())
        windows = [r.drop_window_seconds for r in rules if r.drop_factor is not None]
        if windows and owners:
            now = self._clock()
            self._engine.seed(self._store.balances_since(utc(now - max(windows))), now)
        if reopened:
            log.info("alerts: %d alerts still firing since before the start", reopened)

    def _firing_ttl(self) -> float:
        """How long Alertmanager keeps a firing alert without news: twice the longest cooldown
        (repeats come at least that often while it lasts) plus 5 minutes."""
        cooldowns = [self._settings.rules.cooldown_seconds] + [r.cooldown_seconds for r in self._settings.user_rules.values()]
        return 2 * max(cooldowns) + 300

    # ------------------------------------------------------------------ feeding and evaluating

    def _on_state(self, state: AccountState, previous: AccountState | None, source: str) -> None:
        """The manager's listener (on the fetch loop's thread): enqueue only."""
        if not self._stopped:
            self._queue.put((state, self._clock()))

    def _run(self) -> None:
        """Evaluate queued reads in batches: after each batch, wait up to `PACE_SECONDS` for more
        to arrive (a flush or stop cuts that short), so that a refresh's reads trickling in one
        by one do not each cost a thread wake-up."""
        engine, pace = self._engine, self._pace
        while True:
            batch = next_batch(self._queue)
            for item in batch:
                if item is _STOP:
                    return
                if isinstance(item, _Flush):
                    item.open = engine.open_keys()
                    item.done.set()
                    continue
                try:
                    events = engine.observe(item[0], item[1])
                except Exception:
                    log.exception("alerts: evaluating %s failed", item[0].account_id)
                    continue
                for event in events:
                    self._emit(event)
            if pace.wait(PACE_SECONDS):
                pace.clear()

    def _emit(self, event: AlertEvent) -> None:
        log.log(_LOG_LEVELS[event.level] if event.state == FIRING else logging.INFO, "alert %s %s%s: %s",
                event.type.value, event.state, " (repeat)" if event.repeat else "", event.message)
        with self._counts_lock:
            if event.state == FIRING and not event.repeat:
                self._fired[event.type.value] += 1
            if self._store is None:
                self._remembered += 1
                r = to_record(event)
                self._memory.appendleft(Alert(self._remembered, r.type, r.state, r.level, r.user_id, r.broker,
                                              r.value, r.threshold, r.message, r.created_at))
        for sink in self._sinks:
            sink.put(event)

    # ------------------------------------------------------------------ public API

    def subscribe(self, callback: Callable[[AlertEvent], None]) -> Callable[[], None]:
        """Call ``callback(event)`` for every notification, on the subscribers' delivery thread
        (keep it quick). Returns a function that unsubscribes."""
        return self._subscribers.subscribe(callback)

    def get_recent_alerts(self, limit: int = 50) -> list[Alert]:
        """The ``limit`` (1..1000) most recent notifications from the alert log, newest first.
        (Written by the delivery thread: call `flush` first to see the very latest.)"""
        if self._store is not None:
            return self._store.recent_alerts(limit)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 1000:
            raise ValueError(f"limit must be an integer from 1 to 1000, got {limit!r}")
        with self._counts_lock:
            return list(self._memory)[:limit]

    def fired_counts(self) -> dict[str, int]:
        """Alerts that began firing since start, by type (repeats not counted; every type present)."""
        with self._counts_lock:
            return dict(self._fired)

    def open_alerts(self, timeout: float = 30.0) -> set[tuple[str, str, str | None]]:
        """(type, user_id, broker) of every alert firing after the reads enqueued so far."""
        marker = self._reach_worker(timeout)
        return {(kind.value, user, broker) for kind, user, broker in marker.open}

    @property
    def settings(self) -> AlertSettings:
        return self._settings

    @property
    def stopped(self) -> bool:
        return self._stopped

    def _reach_worker(self, timeout: float) -> _Flush:
        marker = _Flush()
        if self._thread.is_alive():
            self._queue.put(marker)
            self._pace.set()
            marker.done.wait(timeout)
        return marker

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until every read enqueued so far is evaluated and its notifications delivered
        (or given up) by every sink. False if ``timeout`` passed first."""
        deadline = time.monotonic() + timeout
        if self._thread.is_alive() and not self._reach_worker(timeout).done.is_set():
            return False
        return all(sink.flush(deadline) for sink in self._sinks)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop listening, evaluate what is queued, deliver what sinks hold (giving up after
        ``timeout`` seconds in all), stop the threads and detach from the manager. Idempotent."""
        with self._life_lock:
            if self._stopped:
                return
            self._stopped = True
        deadline = time.monotonic() + timeout
        self._unsubscribe()
        self._queue.put(_STOP)
        self._pace.set()
        self._thread.join(max(0.0, deadline - time.monotonic()))
        for sink in self._sinks:
            sink.stop(deadline)
        _unregister(self._source, self)


# --------------------------------------------------------------------------- one per manager

_registry_lock = threading.Lock()
_systems: dict = {}  # manager -> MonitoringSystem attached to it (until stopped)
_attach_lock = threading.RLock()  # one attachment at a time (attaching does I/O: not under _registry_lock)


def _attached(manager) -> MonitoringSystem | None:
    with _registry_lock:
        system = _systems.get(manager)
    return system if system is not None and not system.stopped else None


def _unregister(manager, system: MonitoringSystem) -> None:
    with _registry_lock:
        if _systems.get(manager) is system:
            del _systems[manager]


def get_monitoring_system(source, clock: Callable[[], float] | None = None) -> MonitoringSystem:
    """The monitoring system attached to ``source`` (a StateView, usually the manager), attached
    on first call. ``clock`` is used only when attaching. Raises ConfigError for a bad
    configuration. (`bot.monitoring_system.get_monitoring_system` defaults ``source`` to the
    module-level manager.)"""
    system = _attached(source)
    if system is not None:
        return system
    with _attach_lock:
        return _attached(source) or MonitoringSystem(source, clock=clock or time.time)
