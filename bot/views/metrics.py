"""Prometheus metrics of one manager, built from its state at scrape time.

`metrics_for(manager)` gives the manager's `ManagerMetrics` (made on first use): its own
``CollectorRegistry`` (never prometheus_client's global one) holding a collector that reads
``manager.current_states()`` when scraped — a scrape never calls an exchange nor starts a read —
and a manager listener that counts read durations and failures (reads before the first
`metrics_for(manager)` call are not counted). `render_metrics(manager)` returns the text
exposition format (``METRICS_CONTENT_TYPE``) for the web app and the monitor; it encodes the same
families as ``generate_latest(registry)``, with label texts prepared once per account, so that a
scrape of 5,000 accounts stays well within 200 ms.

Metrics (labels ``owner`` = "master" or the user id, ``broker``, ``exchange``; money is in the
base currency named by ``multibalance_info``):

- ``multibalance_info{base_currency, version}``: always 1.
- ``multibalance_account_value{owner, broker, exchange}``: absent while the value is unknown.
- ``multibalance_account_up{owner, broker, exchange}``: 1 if the last read succeeded, else 0 (also
  0 before the first read and for an account without credentials).
- ``multibalance_account_last_success_timestamp_seconds{owner, broker, exchange}``: Unix time of
  the last good read; absent before it.
- ``multibalance_account_asset_amount{owner, broker, exchange, asset}``: amount of one asset in its
  own units (the last good read's); off with settings ``metrics.assets: false``.
- ``multibalance_accounts{status}``: accounts by status (ok, stale, error, not_configured, and
  pending = never read yet).
- ``multibalance_accounts_omitted``: user accounts left without per-account series by the cap.
- ``multibalance_users``: enabled users; ``multibalance_user_capital``: sum of the users' known
  values (absent when none is known).
- ``multibalance_cache_hits_total``, ``multibalance_cache_misses_total``: the manager's cache lookups.
- ``multibalance_alerts_fired_total{type}``: from the monitoring system given to `watch_alerts`.
- ``multibalance_fetch_duration_seconds{exchange}``: histogram of read durations (retries and
  rate-limit waits included).
- ``multibalance_fetch_errors_total{exchange, error_class}``: failed reads; ``error_class`` is the
  exception class (the part of the error before ':'; "Other" if it is not a plain name).

Cardinality: per-account series exist for every master account and for at most
``settings.metrics.max_user_accounts`` user accounts (default 1,000), taken whole user by whole
user in configuration order; the first user that does not fit and every later one are left out
and counted in ``multibalance_accounts_omitted`` (totals such as ``multibalance_user_capital``
and ``multibalance_accounts`` still include them). ``asset`` values are the exchanges' asset codes,
``exchange`` the configured ccxt ids, ``error_class`` exception class names: all bounded.
"""
from __future__ import annotations

import logging
import math
import re
import threading
import weakref
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping

from prometheus_client import CollectorRegistry
from prometheus_client.core import Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

import bot
from bot.core.state import AccountState, Status, sum_known
from bot.config import MASTER_OWNER

log = logging.getLogger(__name__)

METRICS_CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
PREFIX = "multibalance"
ACCOUNT_LABELS = ("owner", "broker", "exchange")
ASSET_LABELS = ACCOUNT_LABELS + ("asset",)
FETCH_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
PENDING = "pending"
OTHER_ERROR = "Other"
_ERROR_CLASS = re.compile(r"[A-Za-z_][A-Za-z0-9_.]{0,63}")

_registry_lock = threading.Lock()  # guards _by_manager
_by_manager: "weakref.WeakKeyDictionary[object, ManagerMetrics]" = weakref.WeakKeyDictionary()


def metrics_for(manager) -> ManagerMetrics:
    """The metrics of ``manager``, made (and its listener added) on the first call. Reads the
    configuration if the manager has not yet (ConfigError); never reads an account."""
    with _registry_lock:
        metrics = _by_manager.get(manager)
        if metrics is None:
            metrics = _by_manager[manager] = ManagerMetrics(manager)
        return metrics


def render_metrics(manager) -> bytes:
    """The manager's metrics in the Prometheus text format 0.0.4 (``METRICS_CONTENT_TYPE``)."""
    return encode_text(metrics_for(manager).collector.families())


def error_class(error: str | None) -> str:
    """The exception class of an ``AccountState.error`` ("Class: message"), bounded for a label."""
    name = (error or "").split(":", 1)[0].strip()
    return name if _ERROR_CLASS.fullmatch(name) else OTHER_ERROR


# --------------------------------------------------------------------------- families as data


@dataclass(slots=True)
class Family:
    """One metric family as plain data. ``name`` is the exposition name (counters end in
    ``_total``, the info metric in ``_info``); ``rows`` are ``(suffix, label values, label text or
    None, value)``: suffix "" or, for a histogram, "_bucket" (labels + ``le``), "_count", "_sum"."""

    name: str
    kind: str  # gauge | counter | info | histogram
    help: str
    labels: tuple[str, ...] = ()
    rows: list = field(default_factory=list)

    def add(self, values: tuple, value, text: str | None = None, suffix: str = "") -> None:
        self.rows.append((suffix, values, text, value))

    def metric(self) -> Metric:
        """The family as a prometheus_client ``Metric`` (for ``CollectorRegistry.collect``)."""
        base = self.name.removesuffix("_total") if self.kind == "counter" else (
            self.name.removesuffix("_info") if self.kind == "info" else self.name)
        metric = Metric(base, self.help, self.kind)
        for suffix, values, _, value in self.rows:
            names = self.labels + ("le",) if suffix == "_bucket" else self.labels
            metric.add_sample(self.name + suffix, dict(zip(names, values)), value)
        return metric


def encode_text(families: Iterable[Family]) -> bytes:
    """The text exposition format (0.0.4) of ``families``."""
    out = []
    for f in families:
        kind = "gauge" if f.kind == "info" else f.kind
        out.append(f"# HELP {f.name} {_escape_help(f.help)}\n"
                   f"# TYPE {f.name} {kind}\n")
        for suffix, values, text, value in f.rows:
            if text is None:
                names = f.labels + ("le",) if suffix == "_bucket" else f.labels
                text = label_text(names, values)
            out.append(f"{f.name}{suffix}{{{text}}} {_number(value)}\n" if text
                       else f"{f.name}{suffix} {_number(value)}\n")
    return "".join(out).encode("utf-8")


def label_text(names: tuple[str, ...], values: tuple) -> str:
    return ",".join(f'{n}="{_escape(v)}"' for n, v in zip(names, values))


def _escape(value: str) -> str:
    if "\\" in value or '"' in value or "\n" in value:
        return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
    return value


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _number(value) -> str:
    if isinstance(value, int):
        return str(value)
    if math.isfinite(value):
        return repr(value)
    return "NaN" if value != value else ("+Inf" if value > 0 else "-Inf")


# --------------------------------------------------------------------------- the manager's metrics


class ManagerMetrics:
    """One manager's registry and collector, and the read counters fed by its listener.

    ``_lock`` guards ``_alert_counts`` (the watched monitoring system's ``fired_counts``),
    ``_durations`` (exchange → cumulative bucket counts, then +Inf count, then sum) and
    ``_errors`` ((exchange, error class) → count). Work under it is O(buckets)."""

    def __init__(self, manager):
        self._lock = threading.Lock()
        self._alert_counts: Callable[[], Mapping[str, int]] | None = None
        self._durations: dict[str, list[float]] = {}
        self._errors: dict[tuple[str, str], int] = {}
        self.collector = StateCollector(manager, self)
        self.registry = CollectorRegistry()
        self.registry.register(self.collector)
        manager.add_listener(self._on_read)

    def watch_alerts(self, monitoring_system) -> None:
        """Export ``monitoring_system.fired_counts()`` (alert type → alerts fired) at each scrape."""
        with self._lock:
            self._alert_counts = monitoring_system.fired_counts

    def alert_counts(self) -> Mapping[str, int] | None:
        with self._lock:
            source = self._alert_counts
        if source is None:
            return None
        try:
            return source()
        except Exception:  # a broken alert source must not break the scrape
            log.exception("monitoring system fired_counts() failed")
            return None

    def read_counts(self) -> tuple[dict[str, list[float]], dict[tuple[str, str], int]]:
        """Copies of the duration histograms and the error counts."""
        with self._lock:
            return {k: list(v) for k, v in self._durations.items()}, dict(self._errors)

    def _on_read(self, state: AccountState, previous: AccountState | None, source: str) -> None:
        """Manager listener (on a fetch worker): a few additions under the lock."""
        seconds = state.read_seconds
        error_key = None if state.status is Status.OK else (state.exchange, error_class(state.error))
        with self._lock:
            if seconds is not None:
                row = self._durations.get(state.exchange)
                if row is None:
                    row = self._durations[state.exchange] = [0] * (len(FETCH_BUCKETS) + 1) + [0.0]
                for i, bound in enumerate(FETCH_BUCKETS):
                    if seconds <= bound:
                        row[i] += 1
                row[-2] += 1
                row[-1] += seconds
            if error_key is not None:
                self._errors[error_key] = self._errors.get(error_key, 0) + 1


class StateCollector:
    """Builds every family at scrape time from ``manager.current_states()`` and the counters.

    Holds the manager weakly (the manager holds the listener of ``metrics``) and otherwise only
    immutable data prepared from the configuration, so it needs no lock of its own."""

    def __init__(self, manager, metrics: ManagerMetrics):
        self._manager = weakref.ref(manager)
        self._metrics = metrics
        config = manager.config
        settings = config.settings
        self._base = settings.base_currency
        self._assets = settings.metrics.assets
        self._users = len(config.enabled_users())
        accounts = config.accounts()
        self._all_ids = tuple(a.account_id for a in accounts)
        exported, self._omitted = exported_accounts(accounts, settings.metrics.max_user_accounts)
        self._accounts = tuple((a.account_id, labels, label_text(ACCOUNT_LABELS, labels))
                               for a in exported for labels in [(a.owner, a.broker.name, a.broker.exchange)])

    def describe(self) -> Iterable[Metric]:
        """The family names, so that the registry checks clashes without collecting."""
        return [f.metric() for f in self._empty_families()]

    def collect(self) -> Iterable[Metric]:
        return [f.metric() for f in self.families()]

    def families(self) -> list[Family]:
        families = self._empty_families()
        manager = self._manager()
        if manager is None:
            return families
        (info, value, up, success, amount, by_status, omitted, users, capital, hits, misses, alerts,
         durations, errors) = families
        states = {s.account_id: s for s in manager.current_states()}
        info.add((self._base, bot.__version__), 1)
        for account_id, labels, text in self._accounts:
            state = states.get(account_id)
            up.add(labels, 1 if state is not None and state.status is Status.OK else 0, text)
            if state is None:
                continue
            if state.value is not None:
                value.add(labels, float(state.value), text)
            if state.fetched_at is not None:
                success.add(labels, state.fetched_at, text)
            if self._assets:
                for asset, holding in state.holdings.items():
                    amount.add((*labels, asset), float(holding.amount), f'{text},asset="{_escape(asset)}"')
        counts = dict.fromkeys([s.value for s in Status] + [PENDING], 0)
        for account_id in self._all_ids:
            state = states.get(account_id)
            counts[PENDING if state is None else state.status.value] += 1
        for status, count in counts.items():
            by_status.add((status,), count)
        omitted.add((), self._omitted)
        users.add((), self._users)
        total = sum_known(s for s in states.values() if s.owner != MASTER_OWNER)
        if total is not None:
            capital.add((), float(total))
        cache_hits, cache_misses = manager.cache_stats()
        hits.add((), cache_hits)
        misses.add((), cache_misses)
        for alert_type, count in sorted((str(getattr(t, "value", t)), n)
                                        for t, n in (self._metrics.alert_counts() or {}).items()):
            alerts.add((alert_type,), count)
        rows, error_counts = self._metrics.read_counts()
        bounds = [repr(b) for b in FETCH_BUCKETS] + ["+Inf"]
        for exchange, row in sorted(rows.items()):
            for bound, count in zip(bounds, row):
                durations.add((exchange, bound), count, suffix="_bucket")
            durations.add((exchange,), row[-2], suffix="_count")
            durations.add((exchange,), row[-1], suffix="_sum")
        for (exchange, error), count in sorted(error_counts.items()):
            errors.add((exchange, error), count)
        return families

    @staticmethod
    def _empty_families() -> list[Family]:
        p = PREFIX
        return [
            Family(f"{p}_info", "info", "multibalance build and the base currency of every value.",
                   ("base_currency", "version")),
            Family(f"{p}_account_value", "gauge", "Value of an account in the base currency (absent while unknown).",
                   ACCOUNT_LABELS),
            Family(f"{p}_account_up", "gauge", "1 if the account's last read succeeded, else 0.", ACCOUNT_LABELS),
            Family(f"{p}_account_last_success_timestamp_seconds", "gauge",
                   "Unix time of the account's last successful read.", ACCOUNT_LABELS),
            Family(f"{p}_account_asset_amount", "gauge", "Amount of one asset held in an account, in the asset's units.",
                   ASSET_LABELS),
            Family(f"{p}_accounts", "gauge", "Configured accounts by status (pending: never read yet).", ("status",)),
            Family(f"{p}_accounts_omitted", "gauge",
                   "User accounts without per-account series (settings metrics.max_user_accounts)."),
            Family(f"{p}_users", "gauge", "Enabled users."),
            Family(f"{p}_user_capital", "gauge", "Sum of the known values of all user accounts, in the base currency."),
            Family(f"{p}_cache_hits_total", "counter", "Balance lookups answered entirely from fresh cache entries."),
            Family(f"{p}_cache_misses_total", "counter", "Balance lookups that found some account not fresh."),
            Family(f"{p}_alerts_fired_total", "counter", "Alerts fired by the monitoring system, by type.", ("type",)),
            Family(f"{p}_fetch_duration_seconds", "histogram",
                   "Duration of one account read (retries and rate-limit waits included).", ("exchange",)),
            Family(f"{p}_fetch_errors_total", "counter", "Account reads that failed, by exchange and exception class.",
                   ("exchange", "error_class")),
        ]


def exported_accounts(accounts, max_user_accounts: int) -> tuple[list, int]:
    """The accounts that get their own series, and how many user accounts were left out: every
    master account, then whole users in configuration order while they fit in the cap."""
    exported, users = [], {}
    for account in accounts:
        if account.owner == MASTER_OWNER:
            exported.append(account)
        else:
            users.setdefault(account.owner, []).append(account)
    budget, omitted = max_user_accounts, 0
    for own in users.values():
        if omitted or len(own) > budget:
            omitted += len(own)
            continue
        budget -= len(own)
        exported.extend(own)
    return exported, omitted
