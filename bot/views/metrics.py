"""Prometheus metrics of one `StateView`, built from its current states at scrape time.

`metrics_for(view)` gives the view's `ViewMetrics` (made on first use): its own
``CollectorRegistry`` (never prometheus_client's global one) holding a collector that reads
``view.current_states()`` and ``view.cache_stats()`` when scraped — a scrape never calls an
exchange nor starts a read — and a listener (``view.subscribe``) that counts read durations and
failures (reads before the first `metrics_for(view)` call are not counted). The totals come from
the read model (`bot.views.model`), like the CLI's and the dashboard's. `render_metrics(view)`
returns the text exposition format (``METRICS_CONTENT_TYPE``) for the web app and the monitor:
the same families as ``generate_latest(registry)``, through the fast encoder of
`bot.views.exposition`, so that a scrape of 5,000 accounts stays well within 200 ms.

Metrics (labels ``owner`` = "master" or the user id, ``broker``, ``exchange``; money is in the
base currency named by ``multibalance_info``):

- ``multibalance_info{base_currency, version}``: always 1.
- ``multibalance_account_value{owner, broker, exchange, currency}``: absent while the value is
  unknown; ``currency`` is the base currency (so no query needs a join on the info metric).
- ``multibalance_account_up{owner, broker, exchange}``: 1 if the last read succeeded, else 0 (also
  0 before the first read); absent for an account without credentials (not configured: nothing
  is down, so the shipped ``MultibalanceAccountDown`` rule does not page for it).
- ``multibalance_account_last_success_timestamp_seconds{owner, broker, exchange}``: Unix time of
  the last good read; absent before it.
- ``multibalance_account_asset_amount{owner, broker, exchange, asset}``: amount of one asset in its
  own units (the last good read's); off with settings ``metrics.assets: false``.
- ``multibalance_accounts{status}``: accounts by status (ok, stale, error, not_configured, and
  pending = never read yet).
- ``multibalance_accounts_omitted``: user accounts left without per-account series by the cap.
- ``multibalance_users``: enabled users; ``multibalance_users_counted``: users whose total is
  known (the average capital per user is ``user_capital / users_counted``);
  ``multibalance_user_capital{currency}``: sum of the users' known totals (0 with no users, absent when
  there are users and no total is known); ``multibalance_user_capital_partial``: 1 when some
  user's total is partial or unknown (an account not ok, unknown, or holding an unpriced asset).
- ``multibalance_asset_price{exchange, asset, currency}``: the last price of an asset held on an
  exchange, in the base currency (from the last good reads; absent for unpriced assets).
- ``process_*`` and ``python_*``: prometheus_client's process, platform and GC collectors.
- ``multibalance_cache_hits_total``, ``multibalance_cache_misses_total``: the view's cache lookups.
- ``multibalance_alerts_fired_total{type}``: from the monitoring system given to `watch_alerts`.
- ``multibalance_fetch_duration_seconds{exchange}``: histogram of read durations (retries and
  rate-limit waits included).
- ``multibalance_fetch_errors_total{exchange, error_class}``: failed reads; ``error_class`` is the
  state's ``error_class`` (the exception class; "Other" when absent or not a plain name).

Cardinality: per-account series exist for every master account and for at most
``settings.metrics.max_user_accounts`` user accounts (default 1,000), taken whole user by whole
user in configuration order; the first user that does not fit and every later one are left out
and counted in ``multibalance_accounts_omitted`` (totals such as ``multibalance_user_capital``
and ``multibalance_accounts`` still include them). ``asset`` values are the exchanges' asset codes,
``exchange`` the configured ccxt ids, ``error_class`` exception class names: all bounded.
"""
from __future__ import annotations

import logging
import re
import threading
import weakref
from dataclasses import dataclass, fields
from typing import Callable, Iterable, Mapping

from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector, generate_latest
from prometheus_client.core import Metric

import bot
from bot.config import MASTER_OWNER
from bot.core.sources import FOLLOWED
from bot.core.state import AccountState, Status
from bot.views.exposition import METRICS_CONTENT_TYPE, Family, encode_text, escape, label_text
from bot.views.model import PENDING, build_model

__all__ = ["METRICS_CONTENT_TYPE", "ViewMetrics", "error_label", "exported_accounts", "metrics_for", "render_metrics"]

log = logging.getLogger(__name__)

PREFIX = "multibalance"
ACCOUNT_LABELS = ("owner", "broker", "exchange")
VALUE_LABELS = ACCOUNT_LABELS + ("currency",)
ASSET_LABELS = ACCOUNT_LABELS + ("asset",)
PRICE_LABELS = ("exchange", "asset", "currency")
FETCH_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
OTHER_ERROR = "Other"
_ERROR_CLASS = re.compile(r"[A-Za-z_][A-Za-z0-9_.]{0,63}")

_registry_lock = threading.Lock()  # guards _by_view
_by_view: "weakref.WeakKeyDictionary[object, ViewMetrics]" = weakref.WeakKeyDictionary()


def metrics_for(view) -> ViewMetrics:
    """The metrics of ``view``, made (and subscribed to its reads) on the first call. Reads the
    configuration if the view has not yet (ConfigError); never reads an account."""
    with _registry_lock:
        metrics = _by_view.get(view)
        if metrics is None:
            metrics = _by_view[view] = ViewMetrics(view)
        return metrics


def render_metrics(view) -> bytes:
    """The view's metrics in the Prometheus text format 0.0.4 (``METRICS_CONTENT_TYPE``), then
    this process's ``process_*`` and ``python_*`` series."""
    return (encode_text(metrics_for(view).collector.families().all() + exchange_limit_families(view))
            + generate_latest(_PROCESS_REGISTRY))


# prometheus_client's process, platform (python_info) and GC collectors, in a registry of their own.
_PROCESS_REGISTRY = CollectorRegistry()
ProcessCollector(registry=_PROCESS_REGISTRY)
PlatformCollector(registry=_PROCESS_REGISTRY)
GCCollector(registry=_PROCESS_REGISTRY)


def error_label(error_class: str | None) -> str:
    """An ``AccountState.error_class`` bounded for a label: the class name, or "Other"."""
    return error_class if error_class and _ERROR_CLASS.fullmatch(error_class) else OTHER_ERROR


# --------------------------------------------------------------------------- the families, by name


@dataclass(slots=True)
class Families:
    """Every family of a scrape, by name, in exposition order."""

    info: Family
    account_value: Family
    asset_price: Family
    account_up: Family
    last_success: Family
    asset_amount: Family
    accounts: Family
    accounts_omitted: Family
    users: Family
    users_counted: Family
    user_capital: Family
    user_capital_partial: Family
    cache_hits: Family
    cache_misses: Family
    alerts_fired: Family
    fetch_duration: Family
    fetch_errors: Family

    def all(self) -> list[Family]:
        return [getattr(self, f.name) for f in fields(self)]

    @classmethod
    def empty(cls) -> Families:
        p = PREFIX
        return cls(
            info=Family(f"{p}_info", "info", "multibalance build and the base currency of every value.",
                        ("base_currency", "version")),
            account_value=Family(f"{p}_account_value", "gauge",
                                 "Value of an account in the base currency (absent while unknown).", VALUE_LABELS),
            asset_price=Family(f"{p}_asset_price", "gauge",
                               "Last price of an asset held on an exchange, in the base currency.", PRICE_LABELS),
            account_up=Family(f"{p}_account_up", "gauge", "1 if the account's last read succeeded, else 0.",
                              ACCOUNT_LABELS),
            last_success=Family(f"{p}_account_last_success_timestamp_seconds", "gauge",
                                "Unix time of the account's last successful read.", ACCOUNT_LABELS),
            asset_amount=Family(f"{p}_account_asset_amount", "gauge",
                                "Amount of one asset held in an account, in the asset's units.", ASSET_LABELS),
            accounts=Family(f"{p}_accounts", "gauge", "Configured accounts by status (pending: never read yet).",
                            ("status",)),
            accounts_omitted=Family(f"{p}_accounts_omitted", "gauge",
                                    "User accounts without per-account series (settings metrics.max_user_accounts)."),
            users=Family(f"{p}_users", "gauge", "Enabled users."),
            users_counted=Family(f"{p}_users_counted", "gauge",
                                 "Enabled users whose total is known (the capital per user is over these)."),
            user_capital=Family(f"{p}_user_capital", "gauge",
                                "Sum of the known totals of all users, in the base currency.", ("currency",)),
            user_capital_partial=Family(f"{p}_user_capital_partial", "gauge",
                                        "1 if some user's total is partial or unknown, else 0."),
            cache_hits=Family(f"{p}_cache_hits_total", "counter",
                              "Balance lookups answered entirely from fresh cache entries."),
            cache_misses=Family(f"{p}_cache_misses_total", "counter", "Balance lookups that found some account not fresh."),
            alerts_fired=Family(f"{p}_alerts_fired_total", "counter", "Alerts fired by the monitoring system, by type.",
                                ("type",)),
            fetch_duration=Family(f"{p}_fetch_duration_seconds", "histogram",
                                  "Duration of one account read (retries and rate-limit waits included).", ("exchange",)),
            fetch_errors=Family(f"{p}_fetch_errors_total", "counter",
                                "Account reads that failed, by exchange and exception class.", ("exchange", "error_class")),
        )


# --------------------------------------------------------------------------- the view's metrics


class ViewMetrics:
    """One view's registry and collector, and the read counters fed by its subscription.

    ``_lock`` guards ``_alert_counts`` (the watched monitoring system's ``fired_counts``),
    ``_durations`` (exchange → cumulative bucket counts, then +Inf count, then sum) and
    ``_errors`` ((exchange, error class) → count). Work under it is O(buckets)."""

    def __init__(self, view):
        self._lock = threading.Lock()
        self._alert_counts: Callable[[], Mapping[str, int]] | None = None
        self._durations: dict[str, list[float]] = {}
        self._errors: dict[tuple[str, str], int] = {}
        self.collector = StateCollector(view, self)
        self.registry = CollectorRegistry()
        self.registry.register(self.collector)
        view.subscribe(self._on_read)  # for the view's lifetime

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
        """State listener (on the fetch loop's thread): a few additions under the lock. States another
        process read (``followed``) are its reads, counted there."""
        if source == FOLLOWED:
            return
        seconds = state.read_seconds
        error_key = None if state.status is Status.OK else (state.exchange, error_label(state.error_class))
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
    """Builds every family at scrape time from ``view.current_states()`` and the counters.

    Holds the view weakly (the view holds the listener of ``metrics``) and otherwise only
    immutable data prepared from the configuration, so it needs no lock of its own."""

    def __init__(self, view, metrics: ViewMetrics):
        self._view = weakref.ref(view)
        self._metrics = metrics
        config = self._config = view.config
        settings = config.settings
        self._base = settings.base_currency
        self._assets = settings.metrics.assets
        exported, self._omitted = exported_accounts(config.accounts(), settings.metrics.max_user_accounts)
        currency = f',currency="{escape(self._base)}"'
        # (account id, labels, label text, value label text, configured)
        self._accounts = tuple((a.account_id, labels, text, text + currency,
                                a.broker.paper or a.broker.credentials is not None)
                               for a in exported for labels in [(a.owner, a.broker.name, a.broker.exchange)]
                               for text in [label_text(ACCOUNT_LABELS, labels)])

    def describe(self) -> Iterable[Metric]:
        """The family names, so that the registry checks clashes without collecting."""
        return [f.metric() for f in Families.empty().all() + exchange_limit_families(None)]

    def collect(self) -> Iterable[Metric]:
        return [f.metric() for f in self.families().all() + exchange_limit_families(self._view())]

    def families(self) -> Families:
        f = Families.empty()
        view = self._view()
        if view is None:
            return f
        states = {s.account_id: s for s in view.current_states()}
        f.info.add((self._base, bot.__version__), 1)
        self._account_series(f, states)
        model = build_model(self._config, states)
        counts = dict.fromkeys([s.value for s in Status] + [PENDING], 0)
        for owner in model.owners:
            for state in owner.states:
                counts[PENDING if state is None else state.status.value] += 1
        for status, count in counts.items():
            f.accounts.add((status,), count)
        f.accounts_omitted.add((), self._omitted)
        summary = model.summary
        f.users.add((), summary.user_count)
        f.users_counted.add((), summary.users_counted)
        if summary.total_user_capital is not None:
            f.user_capital.add((self._base,), float(summary.total_user_capital))
        f.user_capital_partial.add((), int(summary.partial))
        cache_hits, cache_misses = view.cache_stats()
        f.cache_hits.add((), cache_hits)
        f.cache_misses.add((), cache_misses)
        self._counters(f)
        return f

    def _account_series(self, f: Families, states: Mapping[str, AccountState]) -> None:
        value, up, success, amount, assets = f.account_value, f.account_up, f.last_success, f.asset_amount, self._assets
        base, prices = self._base, {}
        for account_id, labels, text, value_text, configured in self._accounts:
            state = states.get(account_id)
            if configured:
                up.add(labels, 1 if state is not None and state.status is Status.OK else 0, text)
            if state is None:
                continue
            if state.value is not None:
                value.add((*labels, base), float(state.value), value_text)
            for asset, holding in state.holdings.items():
                if holding.price is not None and asset != base:
                    prices[(state.exchange, asset)] = holding.price
            if state.fetched_at is not None:
                success.add(labels, state.fetched_at, text)
            if assets:
                for asset, holding in state.holdings.items():
                    amount.add((*labels, asset), float(holding.amount), f'{text},asset="{escape(asset)}"')
        for (exchange, asset), price in sorted(prices.items()):
            f.asset_price.add((exchange, asset, base), float(price))

    def _counters(self, f: Families) -> None:
        for alert_type, count in sorted((str(getattr(t, "value", t)), n)
                                        for t, n in (self._metrics.alert_counts() or {}).items()):
            f.alerts_fired.add((alert_type,), count)
        rows, error_counts = self._metrics.read_counts()
        bounds = [repr(b) for b in FETCH_BUCKETS] + ["+Inf"]
        for exchange, row in sorted(rows.items()):
            for bound, count in zip(bounds, row):
                f.fetch_duration.add((exchange, bound), count, suffix="_bucket")
            f.fetch_duration.add((exchange,), row[-2], suffix="_count")
            f.fetch_duration.add((exchange,), row[-1], suffix="_sum")
        for (exchange, error), count in sorted(error_counts.items()):
            f.fetch_errors.add((exchange, error), count)


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


# --------------------------------------------------------------------------- exchange limits
# The fetch plane's families, from `BalanceService.budget_report` (bot.exchanges.report): kept in
# this one block so that the collector above can change around it.


def exchange_limit_families(source) -> list[Family]:
    """Throttling, pauses and round estimates per exchange; ``source`` is the manager facade
    or a service (None: the empty families, for ``describe``). Starts no read, waits for nothing."""
    p = PREFIX
    throttled = Family(f"{p}_exchange_throttled_total", "counter",
                       "Requests an exchange refused by its rate limits (429, 418 ban, rate-limit errors), by reason.",
                       ("exchange", "reason"))
    paused = Family(f"{p}_exchange_paused_until_timestamp_seconds", "gauge",
                    "Unix time until which the exchange's host is paused by its limits (0: never paused).",
                    ("exchange",))
    rounds = Family(f"{p}_exchange_round_seconds", "gauge",
                    "Estimated seconds one round of the exchange's accounts takes within its limits from one address.",
                    ("exchange",))
    service = getattr(source, "service", source)
    report = service.budget_report() if service is not None and hasattr(service, "budget_report") else {}
    for exchange, entry in sorted(report.items()):
        for reason, count in sorted(entry["throttled"].items()):
            throttled.add((exchange, reason), count)
        paused.add((exchange,), entry["paused_until"])
        rounds.add((exchange,), entry["round_seconds"])
    return [throttled, paused, rounds]

