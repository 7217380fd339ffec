"""Delivery of alert notifications, off the refresh path: one thread and one queue per receiver.

Every `Sink` delivers the events handed to it (`put`, never blocking) in order, on its own
thread, from its own bounded queue; so a slow or dead receiver delays nobody but itself (not the
reads, not the evaluation, not the other receivers). A full queue drops the new event with a
warning rather than grow without bound.

Sinks: `StoreSink` (the alert log in the store), `CallbackSink` (``subscribe(callback)``),
`WebhookSink` (one per ``alerts.webhooks`` entry: JSON or Slack body) and `AlertmanagerSink`
(``POST {alertmanager_url}/api/v2/alerts``, all queued events in one request). HTTP attempts
have a timeout; a failed attempt (connection error, timeout, 429, 5xx) is retried
``webhook_retries`` times with a doubling backoff; other 4xx answers are not retried. Webhook
URLs are logged by scheme and host only (their paths often carry tokens), by this module and,
through `install_log_redaction`, by urllib3's debug log.

Counters (`delivered`, `failed`, `dropped`) are written by the sink's own thread (or, for
`dropped`, under ``_count_lock``) and are read without a lock as monotonic ints.
"""
from __future__ import annotations

import logging
import queue
import socket
import threading
import time
from typing import Callable

import requests

from bot.alerts.model import AlertEvent, utc
from bot.core.queues import next_batch
from bot.config.alerts import AlertSettings, Webhook
from bot.core.secrets import install_log_redaction, redact_url
from bot.store import AlertIn, BalanceStore

log = logging.getLogger(__name__)

QUEUE_SIZE = 10_000
_STOP = object()


class _Marker:
    """Put in a queue by `Sink.flush`; set when everything queued before it was handled."""

    __slots__ = ("done",)

    def __init__(self) -> None:
        self.done = threading.Event()


class Sink:
    """A receiver of alert events with its own thread and bounded queue (see the module docstring)."""

    name = "sink"

    def __init__(self, name: str | None = None, maxsize: int = QUEUE_SIZE):
        self.name = name or self.name
        self._queue: queue.Queue = queue.Queue(maxsize)
        self._abort = threading.Event()  # set when stopping gives up: retries stop waiting
        self._count_lock = threading.Lock()  # guards `dropped`
        self.delivered = self.failed = self.dropped = 0
        self._thread = threading.Thread(target=self._run, name=f"alert-{self.name}", daemon=True)

    def start(self) -> Sink:
        self._thread.start()
        return self

    def put(self, event: AlertEvent) -> None:
        try:
            self._queue.put_nowait(event)
        except queue.Full:
            with self._count_lock:
                self.dropped += 1
            log.warning("alerts: %s queue full, dropped %s %s for %s", self.name, event.type.value, event.state,
                        event.user_id)

    def flush(self, deadline: float) -> bool:
        """Wait until what was queued before this call is handled (until ``deadline``, monotonic)."""
        marker = _Marker()
        try:
            self._queue.put(marker, timeout=max(0.0, deadline - time.monotonic()))
        except queue.Full:
            return False
        return marker.done.wait(max(0.0, deadline - time.monotonic()))

    def stop(self, deadline: float) -> bool:
        """Deliver what is queued, then end the thread; give up at ``deadline`` (monotonic)."""
        if not self._thread.is_alive():
            return True
        try:
            self._queue.put(_STOP, timeout=max(0.0, deadline - time.monotonic()))
        except queue.Full:
            pass
        self._thread.join(max(0.0, deadline - time.monotonic()))
        if self._thread.is_alive():
            self._abort.set()
            log.warning("alerts: %s did not finish delivering within the stop timeout; %d undelivered",
                        self.name, self._queue.qsize())
            return False
        return True

    def _run(self) -> None:
        while True:
            batch = next_batch(self._queue, limit=500)
            events = [item for item in batch if isinstance(item, AlertEvent)]
            if events and not self._abort.is_set():
                try:
                    self.deliver(events)
                except Exception:
                    self.failed += len(events)
                    log.exception("alerts: %s failed to deliver %d events", self.name, len(events))
            for item in batch:
                if isinstance(item, _Marker):
                    item.done.set()
            if any(item is _STOP for item in batch):
                self.close()
                return

    def deliver(self, events: list[AlertEvent]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Release resources; called on the sink's thread when it stops."""


class StoreSink(Sink):
    """Writes every event to the store's alert log."""

    name = "log"

    def __init__(self, store: BalanceStore):
        super().__init__()
        self._store = store

    def deliver(self, events: list[AlertEvent]) -> None:
        for event in events:
            try:
                self._store.add_alert(to_record(event))
                self.delivered += 1
            except Exception:
                self.failed += 1
                log.exception("alerts: writing %s %s to the alert log failed", event.type.value, event.state)


def to_record(event: AlertEvent) -> AlertIn:
    return AlertIn(type=event.type.value, state=event.state, level=event.level.value, user_id=event.user_id,
                   broker=event.broker, value=event.value, threshold=event.threshold, message=event.message,
                   created_at=utc(event.timestamp))


class CallbackSink(Sink):
    """Calls every subscribed callback with each event (callbacks should be quick; one raising
    is logged and does not stop the others). ``_subscribers_lock`` guards ``_subscribers``."""

    name = "subscribers"

    def __init__(self):
        super().__init__()
        self._subscribers_lock = threading.Lock()
        self._subscribers: list[Callable[[AlertEvent], None]] = []

    def subscribe(self, callback: Callable[[AlertEvent], None]) -> Callable[[], None]:
        """Add ``callback``; returns a function that removes it."""
        with self._subscribers_lock:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._subscribers_lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)
        return unsubscribe

    def deliver(self, events: list[AlertEvent]) -> None:
        with self._subscribers_lock:
            callbacks = list(self._subscribers)
        for event in events:
            for callback in callbacks:
                try:
                    callback(event)
                except Exception:
                    log.exception("alerts: subscriber %r failed", callback)
            self.delivered += 1


class _HttpSink(Sink):
    """POSTs JSON with a timeout and bounded retries (session used by this sink's thread only)."""

    def __init__(self, name: str, url: str, settings: AlertSettings):
        super().__init__(name)
        self._url = url
        self._timeout = settings.webhook_timeout_seconds
        self._retries = settings.webhook_retries
        self._backoff = settings.webhook_retry_backoff_seconds
        install_log_redaction()  # urllib3 logs each request's path at DEBUG: the webhook's token
        self._session = requests.Session()

    def post(self, body, what: str) -> bool:
        """POST ``body``; True when the receiver answered 2xx within the attempts allowed."""
        target = redact_url(self._url)
        delay = self._backoff
        for attempt in range(self._retries + 1):
            if attempt:
                if self._abort.wait(delay):
                    break
                delay *= 2
            try:
                response = self._session.post(self._url, json=body, timeout=self._timeout)
            except requests.RequestException as exc:
                problem = type(exc).__name__
            else:
                response.close()
                if response.status_code < 300:
                    return True
                problem = f"HTTP {response.status_code}"
                if response.status_code < 500 and response.status_code != 429:
                    log.warning("alerts: %s refused %s (%s); not retried", target, what, problem)
                    return False
            log.warning("alerts: delivering %s to %s failed (attempt %d of %d: %s)", what, target, attempt + 1,
                        self._retries + 1, problem)
        return False

    def close(self) -> None:
        self._session.close()


class WebhookSink(_HttpSink):
    """One webhook: each event POSTed on its own, as `AlertEvent.to_json` or `to_slack`."""

    def __init__(self, webhook: Webhook, settings: AlertSettings, index: int):
        super().__init__(f"webhook{index}", webhook.url, settings)
        self._format = webhook.format

    def deliver(self, events: list[AlertEvent]) -> None:
        for event in events:
            body = event.to_slack() if self._format == "slack" else event.to_json()
            if self.post(body, f"{event.type.value} {event.state}"):
                self.delivered += 1
            else:
                self.failed += 1


class AlertmanagerSink(_HttpSink):
    """Prometheus Alertmanager: the queued events in one ``POST /api/v2/alerts``; a firing alert
    expires ``firing_ttl_seconds`` after its last notification unless repeated or resolved."""

    name = "alertmanager"

    def __init__(self, settings: AlertSettings, firing_ttl_seconds: float):
        super().__init__("alertmanager", f"{settings.alertmanager_url}/api/v2/alerts", settings)
        self._ttl = firing_ttl_seconds
        self._instance = settings.instance or socket.gethostname()
        self._generator_url = settings.generator_url

    def deliver(self, events: list[AlertEvent]) -> None:
        latest: dict[tuple, AlertEvent] = {}
        for event in events:  # several notifications of one alert: the newest says it all
            latest[event.key] = event
        body = [event.to_alertmanager(self._ttl, self._instance, self._generator_url) for event in latest.values()]
        if self.post(body, f"{len(body)} alerts"):
            self.delivered += len(events)
        else:
            self.failed += len(events)
