"""The JSON bodies of the API, built from the manager's current states and the store only.

Nothing here calls an exchange: `build_users_model` reads ``manager.current_states()`` (no I/O)
and the trade journal. `UsersPayload` caches ``/api/users`` as serialized bytes (and gzip) per
viewer scope; see its docstring for when it is rebuilt.

Number formats: in ``/api/users``, values in the base currency (totals, broker values, P&L) are
JSON numbers rounded like the CLI's ``--json`` (2 decimals for fiat), ``win_rate`` a fraction
from 0 to 1, and trade fields (amount, price, pnl, fee) exact decimal strings. The snapshot and
history endpoints render every decimal as a string. Unknown is ``null``, never 0.
"""
from __future__ import annotations

import datetime as dt
import gzip
import json
import threading
import time
from decimal import Decimal
from zoneinfo import ZoneInfo

from bot.core.state import AccountState, sum_known
from bot.config import MASTER_OWNER
from bot.views.report import iso_utc, money_number
from bot.store import Snapshot, Trade
from bot.store.records import EXACT
from bot.history.journal import EMPTY, trade_stats
from bot.config.web import ADMIN, WebSettings

PENDING = "pending"  # an account configured but not read yet in this process


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


# --------------------------------------------------------------------------- /api/users


def _status(state: AccountState | None, now: float) -> dict:
    if state is None:
        return {"status": PENDING, "age_seconds": None, "error": None, "fetched_at": None}
    age = state.age_seconds(now)
    return {"status": state.status.value, "age_seconds": None if age is None else round(age, 1),
            "error": state.error, "fetched_at": iso_utc(state.fetched_at)}


def trade_json(trade: Trade) -> dict:
    return {"id": trade.id, "broker": trade.broker, "symbol": trade.symbol, "side": trade.side,
            "amount": _text(trade.amount), "price": _text(trade.price), "pnl": _text(trade.pnl),
            "fee": _text(trade.fee), "executed_at": iso(trade.executed_at)}


def _owner_block(broker_names, states: dict[str, AccountState], owner: str, cur: str, now: float) -> tuple:
    own = [states.get(f"{owner}:{name}") for name in broker_names]
    total = sum_known(s for s in own if s is not None)
    brokers = {name: (None if s is None else money_number(s.value, cur)) for name, s in zip(broker_names, own)}
    status = {name: _status(s, now) for name, s in zip(broker_names, own)}
    return total, brokers, status


def build_users_model(manager, web: WebSettings, stats: dict | None = None, now: float | None = None) -> dict:
    """The admin's ``/api/users`` body as a dict (users sorted by total, highest first; unknown
    totals last), with ``_totals`` (user_id -> Decimal total) for `scoped`. ``stats``: user_id ->
    `bot.history.journal.TradeStats` (default: read from the store now)."""
    now = time.time() if now is None else now
    config = manager.config
    settings = config.settings
    cur = settings.base_currency
    states = {s.account_id: s for s in manager.current_states()}
    if stats is None:
        stats = read_stats(manager, web, now)
    users, totals = [], {}
    for user in config.enabled_users():
        names = [b.name for b in user.brokers if b.enabled]
        total, brokers, status = _owner_block(names, states, user.user_id, cur, now)
        s = stats.get(user.user_id, EMPTY)
        totals[user.user_id] = total
        users.append({
            "user_id": user.user_id, "name": user.name, "enabled": user.enabled,
            "total": money_number(total, cur), "brokers": brokers, "status": status,
            "total_trades": s.total_trades,
            "win_rate": None if s.win_rate is None else round(s.win_rate, 4),
            "daily_pnl": money_number(s.daily_pnl, cur), "total_pnl": money_number(s.total_pnl, cur),
            "recent_trades": [trade_json(t) for t in s.recent],
        })
    users.sort(key=lambda u: (totals[u["user_id"]] is None, -(totals[u["user_id"]] or 0), u["user_id"]))
    master = None
    if config.master is not None:
        names = [b.name for b in config.master.brokers if b.enabled]
        total, brokers, status = _owner_block(names, states, MASTER_OWNER, cur, now)
        master = {"name": config.master.name, "total": money_number(total, cur), "brokers": brokers, "status": status}
    return {"timestamp": iso_utc(now), "base_currency": cur, "users": users, "master": master,
            "summary": _summary(list(totals.values()), cur), "_totals": totals}


def read_stats(manager, web: WebSettings, now: float) -> dict:
    history = manager.history
    if history is None:
        return {}
    return trade_stats(history.store, manager.config.settings.timezone, web.recent_trades,
                       now=dt.datetime.fromtimestamp(now, dt.timezone.utc))


def _summary(totals: list[Decimal | None], cur: str) -> dict:
    known = [t for t in totals if t is not None]
    capital = None
    for t in known:
        capital = t if capital is None else EXACT.add(capital, t)
    average = None if capital is None or not totals else capital / len(totals)
    return {"total_users": len(totals), "total_user_capital": money_number(capital, cur),
            "average_per_user": money_number(average, cur)}


def scoped(model: dict, role: str) -> dict:
    """The body a viewer with ``role`` sees: everything for admin; else only that user (no master)."""
    body = {k: v for k, v in model.items() if k != "_totals"}
    if role == ADMIN:
        return body
    body["users"] = [u for u in model["users"] if u["user_id"] == role]
    body["master"] = None
    body["summary"] = _summary([model["_totals"][role]] if body["users"] else [], model["base_currency"])
    return body


class UsersPayload:
    """``/api/users`` from cache: built once per change, served as bytes.

    The model is rebuilt when `changed` was called since the last build (the app registers it
    as a manager state listener and trade listener), or when it is older than
    ``payload_max_age_seconds`` (ages). The trade figures, the costly part, are recomputed only
    when the journal's newest trade id (any process may journal) or the day changed. While one
    thread rebuilds, other threads keep serving the previous bytes instead of queueing.

    Locks: ``_lock`` guards ``_version``, ``_model``, ``_model_version``, ``_built_at`` and
    ``_bodies`` (scope -> [json bytes, gzip bytes or None]); ``_build_lock`` lets one thread build
    at a time (the build runs outside ``_lock``) and guards ``_stats`` and ``_stats_key``.
    """

    def __init__(self, manager, web: WebSettings, clock=time.monotonic):
        self._manager, self._web, self._clock = manager, web, clock
        self._lock = threading.Lock()
        self._build_lock = threading.Lock()
        self._version = 0
        self._model: dict | None = None
        self._model_version = -1
        self._built_at = 0.0
        self._bodies: dict[str, list] = {}
        self._stats: dict = {}
        self._stats_key: tuple | None = None
        self.builds = 0

    def changed(self, *_args) -> None:
        """Mark the payload out of date (listener signature-agnostic)."""
        with self._lock:
            self._version += 1

    def _current(self) -> dict | None:
        """The model if still valid, else None."""
        if (self._model is not None and self._model_version == self._version
                and self._clock() - self._built_at < self._web.payload_max_age_seconds):
            return self._model
        return None

    def model(self) -> dict:
        with self._lock:
            model = self._current()
            stale = self._model
        if model is not None:
            return model
        if not self._build_lock.acquire(blocking=stale is None):
            return stale  # another thread is rebuilding: serve the previous build meanwhile
        try:
            with self._lock:
                model = self._current()
                version = self._version
            if model is not None:
                return model
            started = self._clock()
            model = build_users_model(self._manager, self._web, self._trade_stats(time.time()))
            with self._lock:
                self._model, self._model_version, self._built_at = model, version, started
                self._bodies = {}
                self.builds += 1
            return model
        finally:
            self._build_lock.release()

    def _trade_stats(self, now: float) -> dict:
        """The trade figures, recomputed when the journal or the day changed (under _build_lock)."""
        history = self._manager.history
        if history is None:
            return {}
        zone = ZoneInfo(self._manager.config.settings.timezone)
        key = (history.store.latest_trade_id(), dt.datetime.fromtimestamp(now, zone).date())
        if key != self._stats_key:
            self._stats = read_stats(self._manager, self._web, now)
            self._stats_key = key
        return self._stats

    def body(self, role: str, gzipped: bool = False) -> bytes:
        """The serialized body for a viewer with ``role`` (gzip-compressed when ``gzipped``)."""
        model = self.model()
        with self._lock:
            entry = self._bodies.get(role) if self._model is model else None
        if entry is None:
            raw = json.dumps(scoped(model, role), separators=(",", ":")).encode()
            entry = [raw, None]
            with self._lock:
                if self._model is model:
                    entry = self._bodies.setdefault(role, entry)
        if not gzipped:
            return entry[0]
        if entry[1] is None:
            entry[1] = gzip.compress(entry[0], compresslevel=5)  # idempotent: a race computes it twice
        return entry[1]


# --------------------------------------------------------------------------- snapshots & history
# The snapshot API (docs/api.md): decimals as exact strings, percentages as numbers rounded to
# 2 places. Net worth values are `Decimal`, written as exact JSON numbers (bot.views.exact_json).


def _percent(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def snapshot_json(s: Snapshot, cash: Decimal | None, paper: bool = False) -> dict:
    """One snapshot in the snapshot API's shape (docs/api.md). ``cash``: the value of its
    base-currency holding (None when its per-asset split is unknown); ``paper``: a simulated
    account, whose whole balance is available (it never has funds on hold)."""
    holdings = None if cash is None else EXACT.subtract(s.balance, cash)
    return {"id": str(s.id), "account_id": s.account_id, "balance": _text(s.balance),
            "available_balance": _text(s.balance) if paper else None,
            "holdings_value": _text(holdings), "cash_value": _text(cash), "currency": s.currency,
            "source": s.source, "captured_at": iso(s.captured_at), "created_at": iso(s.created_at),
            "change_amount": _text(s.change_amount), "change_percent": _percent(s.change_percent)}


def series_json(snapshots: list[Snapshot], cash: dict[int, Decimal], paper: bool, currency: str) -> dict:
    """A list of snapshots of one account with its summary: ``start_balance`` is the earliest
    snapshot's, ``end_balance`` the latest's, whatever order the list is in (balance history is
    oldest first, recent snapshots newest first). ``currency`` when the list is empty."""
    earliest, latest = (min(snapshots, key=_order), max(snapshots, key=_order)) if snapshots else (None, None)
    change = percent = None
    if earliest is not None and earliest.currency == latest.currency:
        change = EXACT.subtract(latest.balance, earliest.balance)
        if earliest.balance != 0:
            percent = round(float(change) / float(earliest.balance) * 100, 2)
    return {"snapshots": [snapshot_json(s, cash.get(s.id), paper) for s in snapshots],
            "total_count": len(snapshots),
            "start_balance": None if earliest is None else _text(earliest.balance),
            "end_balance": None if latest is None else _text(latest.balance),
            "total_change_amount": _text(change), "total_change_percent": percent,
            "currency": currency if latest is None else latest.currency}


def _order(s: Snapshot) -> tuple:
    return (s.captured_at, s.id)


def net_worth(states: list[AccountState], store, missing_ids: list[str]) -> dict[str, Decimal]:
    """Holdings summed per asset (unconverted, exact) from the current states; accounts without
    a known state in this process contribute their newest stored snapshot's holdings."""
    totals: dict[str, Decimal] = {}
    for state in states:
        if state.value is None and not state.holdings:
            continue
        for asset, holding in state.holdings.items():
            totals[asset] = EXACT.add(totals.get(asset, Decimal(0)), holding.amount)
    if missing_ids and store is not None:
        for asset, amount in store.net_worth_by_currency(missing_ids).items():
            totals[asset] = EXACT.add(totals.get(asset, Decimal(0)), amount)
    return {asset: totals[asset] for asset in sorted(totals)}
