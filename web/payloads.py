"""The JSON bodies of the API, built from the manager's current states and the store only.

Nothing here calls an exchange: `build_users_model` formats the read model
(`bot.views.model.build_read_model`: ``manager.config`` and ``manager.current_states()``, no I/O) and
the trade journal. `UsersPayload` caches ``/api/users`` as serialized bytes (and gzip) per
viewer scope; see its docstring for when it is rebuilt, and `web.serving` for how the bytes are
served (ETag, 304, gzip, the ``/users`` page around them).

Number formats: in ``/api/users``, values in the base currency (totals, broker values, P&L) are
JSON numbers rounded like the CLI's ``--json`` (2 decimals for fiat), ``win_rate`` a fraction
from 0 to 1, and trade fields (amount, price, pnl, fee) exact decimal strings. The snapshot and
history endpoints render every decimal as a string (`series_body` writes a history's JSON text
straight from the store's columns; `series_json` is the same body as a dict, for a few rows).
Unknown is ``null``, never 0. Totals,
``partial`` marks, the order of the users and the summary are the read model's (see its rule).
"""
from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import threading
import time
from decimal import Decimal, localcontext
from itertools import repeat
from operator import is_, sub
from zoneinfo import ZoneInfo

from bot.core.money import MONEY, decimal_text as _text, money_number
from bot.core.sources import FORCED
from bot.core.state import AccountState
from bot.core.timefmt import iso, iso_utc, utc_from_timestamp
from bot.store import Snapshot, Trade
from bot.store.timeline import SnapshotColumns
from bot.history.journal import EMPTY, trade_stats
from bot.config.web import ADMIN, WebSettings
from bot.views.model import PENDING, AccountLine, OwnerTotal, ReadModel, Summary, build_read_model


# --------------------------------------------------------------------------- /api/users


def _status(line: AccountLine, now: float) -> dict:
    state = line.state
    if state is None:
        return {"status": PENDING, "age_seconds": None, "error": None, "error_class": None, "fetched_at": None,
                "unpriced": []}
    age = state.age_seconds(now)
    return {"status": state.status.value, "age_seconds": None if age is None else round(age, 1),
            "error": state.error, "error_class": state.error_class, "fetched_at": iso_utc(state.fetched_at),
            "unpriced": list(state.unpriced)}


def trade_json(trade: Trade) -> dict:
    return {"id": trade.id, "broker": trade.broker, "symbol": trade.symbol, "side": trade.side,
            "amount": _text(trade.amount), "price": _text(trade.price), "pnl": _text(trade.pnl),
            "fee": _text(trade.fee), "executed_at": iso(trade.executed_at)}


def _owner_json(owner: OwnerTotal, cur: str, now: float) -> dict:
    return {"total": money_number(owner.total, cur), "partial": owner.partial,
            "brokers": {a.broker: money_number(a.value, cur) for a in owner.accounts},
            "status": {a.broker: _status(a, now) for a in owner.accounts}}


def build_users_model(manager, web: WebSettings, stats: dict | None = None, now: float | None = None) -> dict:
    """The admin's ``/api/users`` body as a dict (users ranked by the read model: highest total
    first, unknown totals last), with ``_read`` (the `ReadModel`) for `scoped`. ``stats``:
    user_id -> `bot.history.journal.TradeStats` (default: read from the store now)."""
    now = time.time() if now is None else now
    model = build_read_model(manager, now)
    cur = model.base_currency
    if stats is None:
        stats = read_stats(manager, web, now)
    users = []
    for user in model.ranked:
        s = stats.get(user.owner, EMPTY)
        users.append({
            "user_id": user.owner, "name": user.name, "enabled": True, **_owner_json(user, cur, now),
            "total_trades": s.total_trades,
            "win_rate": None if s.win_rate is None else round(s.win_rate, 4),
            "daily_pnl": money_number(s.daily_pnl, cur), "total_pnl": money_number(s.total_pnl, cur),
            "recent_trades": [trade_json(t) for t in s.recent],
        })
    master = None
    if model.master is not None:
        master = {"name": model.master.name, **_owner_json(model.master, cur, now)}
    return {"timestamp": iso_utc(now), "base_currency": cur, "users": users, "master": master,
            "summary": _summary(model.summary, cur), "_read": model}


def read_stats(manager, web: WebSettings, now: float) -> dict:
    history = manager.history
    if history is None:
        return {}
    return trade_stats(history.store, manager.config.settings.timezone, web.recent_trades,
                       now=utc_from_timestamp(now))


def _summary(summary: Summary, cur: str) -> dict:
    """``total_users``, ``total_user_capital``, ``users_counted`` (users whose total is known),
    ``average_per_user`` (over those), ``partial`` (some user's total is partial or unknown)."""
    return {"total_users": summary.user_count, "total_user_capital": money_number(summary.total_user_capital, cur),
            "users_counted": summary.users_counted, "average_per_user": money_number(summary.average_per_user, cur),
            "partial": summary.partial}


def scoped(model: dict, role: str) -> dict:
    """The body a viewer with ``role`` sees: everything for admin; else only that user (no master)."""
    body = {k: v for k, v in model.items() if k != "_read"}
    if role == ADMIN:
        return body
    read: ReadModel = model["_read"]
    body["users"] = [u for u in model["users"] if u["user_id"] == role]
    body["master"] = None
    body["summary"] = _summary(read.only(role).summary, read.base_currency)
    return body


def dumps_in_pieces(body: dict) -> bytes:
    """``json.dumps(body, separators=(",", ":")).encode()``, byte for byte, one top-level value
    and one element of a top-level list at a time. The C encoder holds the GIL for a whole call:
    serializing 1,000 users (800 KB) in one call stalled every request thread of the process for
    tens of milliseconds at each rebuild; between the pieces the other threads run."""
    if not all(isinstance(key, str) for key in body):
        return _compact(body).encode()
    parts = []
    for key, value in body.items():
        if isinstance(value, list):
            text = "[" + ",".join(map(_compact, value)) + "]"
        else:
            text = _compact(value)
        parts.append(_compact(key) + ":" + text)
    return ("{" + ",".join(parts) + "}").encode()


def _compact(value) -> str:
    return json.dumps(value, separators=(",", ":"))


class PayloadBody:
    """One viewer scope's serialized ``/api/users`` body of one build: the JSON bytes and their
    strong ETag, and, made on first use and then kept, their gzip and the form that ``/users``
    embeds (see `web.serving`). Immutable once made; the lazily made parts may be computed
    twice by threads that race (the same bytes), so no lock is needed."""

    __slots__ = ("raw", "etag", "_gzip", "_page")

    def __init__(self, raw: bytes):
        self.raw = raw
        self.etag = hashlib.blake2b(raw, digest_size=16).hexdigest()
        self._gzip: bytes | None = None
        self._page = None

    @property
    def made_gzip(self) -> bool:
        return self._gzip is not None

    @property
    def made_page(self) -> bool:
        return self._page is not None

    def gzip(self) -> bytes:
        if self._gzip is None:
            self._gzip = gzip.compress(self.raw, compresslevel=5)
        return self._gzip

    def page(self):
        """The `web.serving.EmbeddedJson` of this body (for ``/users``)."""
        if self._page is None:
            from web.serving import EmbeddedJson
            self._page = EmbeddedJson(self.raw)
        return self._page


PREPARED_SCOPES = 8  # a user's own scope is small: made on request beyond these


def _prepared(model: dict, served: dict[str, PayloadBody]) -> dict[str, PayloadBody]:
    """The bodies of ``model`` for the scopes the previous build ``served`` (at most
    `PREPARED_SCOPES`, admin's first: each user's scope scans every user), each with the
    encodings that one had made (gzip, the page's), made before the build is published: the
    request threads then never serialize a body all at once after a rebuild, which they did,
    each for itself, in a GIL-bound stall of several serializations of 800 KB."""
    out = {}
    roles = sorted(served, key=lambda role: role != ADMIN)[:PREPARED_SCOPES]  # admin's (the big one) first
    for role in roles:
        previous = served[role]
        entry = out[role] = PayloadBody(dumps_in_pieces(scoped(model, role)))
        if previous.made_gzip:
            entry.gzip()
        if previous.made_page:
            entry.page()
    return out


class UsersPayload:
    """``/api/users`` (and the data of ``/users``) from cache: built at most once per
    ``payload_max_age_seconds`` however many reads run, served as bytes.

    When it is rebuilt, at the first request after:

    - a read that someone asked for (source ``manual_sync``: ``refresh(force=True)``, the
      Refresh button) or a trade journaled by this process (`changed`): at once, so a caller
      sees what it just did;
    - any other read (a scheduled round, an expired account read on demand: `state_changed`
      only marks it dirty), or a new trade in the journal (any process may journal) or a new
      day: once ``payload_max_age_seconds`` have passed since the last build;
    - otherwise never: the same bytes and ETag are served, a snapshot as of its ``timestamp``
      (ages are as of then). The journal is looked at at most once per period.

    While one thread rebuilds, other threads keep serving the previous bytes instead of queueing;
    the rebuild also makes the new bodies (and encodings) the previous build had served before it
    publishes them (`_prepared`).

    Locks: ``_lock`` guards ``_model``, ``_built_at``, ``_checked_at`` and ``_bodies`` (scope ->
    `PayloadBody`); ``_build_lock`` lets one thread check or build at a time (outside ``_lock``)
    and guards ``_stats`` and ``_stats_key``. ``_dirty`` and ``_forced`` are flags that
    listeners set without a lock (one store of a bool) and the builder clears, under
    ``_build_lock``, before it reads the states: a read that lands during a build is either in
    it or marks the next one.
    """

    def __init__(self, manager, web: WebSettings, clock=time.monotonic):
        self._manager, self._web, self.clock = manager, web, clock
        self._lock = threading.Lock()
        self._build_lock = threading.Lock()
        self._dirty = False
        self._forced = False
        self._model: dict | None = None
        self._built_at = self._checked_at = 0.0
        self._bodies: dict[str, PayloadBody] = {}
        self._stats: dict = {}
        self._stats_key: tuple | None = None
        self.builds = 0

    def changed(self, *_args) -> None:
        """Rebuild at the next request (listener signature-agnostic: the trade listener)."""
        self._forced = True

    def state_changed(self, state, previous=None, source: str | None = None) -> None:
        """The state listener: a forced read rebuilds at the next request, any other marks dirty."""
        if source == FORCED:
            self._forced = True
        else:
            self._dirty = True

    def _valid(self, now: float) -> bool:
        """The model may be served as is (called under ``_lock``)."""
        return (self._model is not None and not self._forced
                and now - self._checked_at < self._web.payload_max_age_seconds)

    def model(self) -> dict:
        now = self.clock()
        with self._lock:
            model = self._model
            if self._valid(now):
                return model
        if not self._build_lock.acquire(blocking=model is None):
            return model  # another thread is checking or rebuilding: serve the previous build meanwhile
        try:
            with self._lock:
                if self._valid(now):
                    return self._model
            if model is not None and not self._forced and not self._dirty \
                    and self._journal_key(time.time()) == self._stats_key:
                with self._lock:
                    self._checked_at = now  # nothing changed: the same bytes for another period
                return model
            self._forced = self._dirty = False
            started = self.clock()
            model = build_users_model(self._manager, self._web, self._trade_stats(time.time()))
            with self._lock:
                served = dict(self._bodies)
            bodies = _prepared(model, served)
            with self._lock:
                self._model, self._built_at, self._checked_at = model, started, started
                self._bodies = bodies
                self.builds += 1
            return model
        finally:
            self._build_lock.release()

    def _journal_key(self, now: float) -> tuple | None:
        """(newest trade id, today in the configured zone): the trade figures change with it."""
        history = self._manager.history
        if history is None:
            return None
        zone = ZoneInfo(self._manager.config.settings.timezone)
        return history.store.latest_trade_id(), dt.datetime.fromtimestamp(now, zone).date()

    def _trade_stats(self, now: float) -> dict:
        """The trade figures, recomputed when the journal or the day changed (under _build_lock)."""
        key = self._journal_key(now)
        if key is None:
            return {}
        if key != self._stats_key:
            self._stats = read_stats(self._manager, self._web, now)
            self._stats_key = key
        return self._stats

    def entry(self, role: str) -> PayloadBody:
        """The serialized body of the current build for a viewer with ``role``."""
        model = self.model()
        with self._lock:
            entry = self._bodies.get(role) if self._model is model else None
        if entry is None:
            entry = PayloadBody(dumps_in_pieces(scoped(model, role)))
            with self._lock:
                if self._model is model:
                    entry = self._bodies.setdefault(role, entry)
        return entry

    def body(self, role: str, gzipped: bool = False) -> bytes:
        """The serialized body for a viewer with ``role`` (gzip-compressed when ``gzipped``)."""
        entry = self.entry(role)
        return entry.gzip() if gzipped else entry.raw


# --------------------------------------------------------------------------- snapshots & history
# The snapshot API (docs/api.md): decimals as exact strings, percentages as numbers rounded to
# 2 places. Net worth values are `Decimal`, written as exact JSON numbers (bot.views.exact_json).


def _percent(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def snapshot_json(s: Snapshot, cash: Decimal | None, paper: bool = False) -> dict:
    """One snapshot in the snapshot API's shape (docs/api.md). ``cash``: the value of its
    base-currency holding (None when its per-asset split is unknown); ``paper``: a simulated
    account, whose whole balance is available (it never has funds on hold)."""
    holdings = None if cash is None else MONEY.subtract(s.balance, cash)
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
        change = MONEY.subtract(latest.balance, earliest.balance)
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


_NULL = "null"
_QUOTED = '"%s"'.__mod__
_COMPACT = (",", ":")
_INFINITE = (float("inf"), float("-inf"))


def _has_none(values) -> bool:
    """Whether `values` holds None, by identity (``None in`` would call Decimal.__eq__ on each)."""
    return any(map(is_, values, repeat(None)))


def _decimal_field(key: str, values) -> tuple[str, object]:
    """(template fragment, its column) for a Decimal-or-None field: the quotes in the template
    when the column has no None, else each value formatted (``"text"`` or null)."""
    if not _has_none(values):
        return f'"{key}":"%s"', values
    return f'"{key}":%s', [_NULL if v is None else _QUOTED(v) for v in values]


def _percent_field(key: str, values) -> tuple[str, object]:
    """The same for a percentage, rounded to 2 places and written as json.dumps writes a float
    (repr; Infinity for an overflow)."""
    if not _has_none(values):
        rounded = list(map(round, values, repeat(2)))
        if not any(map(rounded.__contains__, _INFINITE)):
            return f'"{key}":%r', rounded
    return f'"{key}":%s', [_NULL if v is None else json.dumps(round(v, 2)) for v in values]


def _rows_json(columns: SnapshotColumns, holdings: list, paper: bool, names: dict, lo: int, hi: int) -> list[str]:
    """The JSON objects of rows ``lo:hi`` (the fields and order of `snapshot_json`): one template
    for the slice, one ``%`` per row over the columns (no dict per snapshot)."""
    def cut(values):
        return values[lo:hi]

    account = json.dumps(columns.account_id).replace("%", "%%")
    balances = cut(columns.balances)
    parts = [('"id":"%d"', cut(columns.ids)), (f'"account_id":{account}', None), ('"balance":"%s"', balances),
             ('"available_balance":"%s"', balances) if paper else ('"available_balance":null', None),
             _decimal_field("holdings_value", holdings[lo:hi]), _decimal_field("cash_value", cut(columns.cash)),
             ('"currency":%s', list(map(names.__getitem__, cut(columns.currencies)))),
             ('"source":%s', list(map(names.__getitem__, cut(columns.sources)))),
             ('"captured_at":"%s"', cut(columns.captured_at)), ('"created_at":"%s"', cut(columns.created_at)),
             _decimal_field("change_amount", cut(columns.change_amounts)),
             _percent_field("change_percent", cut(columns.change_percents))]
    template = "{" + ",".join(fragment for fragment, _ in parts) + "}"
    return list(map(template.__mod__, zip(*(values for _, values in parts if values is not None))))


def series_body(columns: SnapshotColumns, paper: bool, currency: str, head: dict, newest_first: bool = False) -> bytes:
    """``json.dumps({**head, **series_json(...)}, separators=(",", ":"))`` of the same snapshots,
    byte for byte, from `SnapshotColumns` (oldest first; ``newest_first`` lists them newest first),
    without a dict per snapshot: the first row (whose change may be unknown) and the others are
    each one template applied to the columns (`_rows_json`)."""
    count = len(columns)
    with localcontext(MONEY):
        if _has_none(columns.cash):
            holdings = [None if c is None else b - c for b, c in zip(columns.balances, columns.cash)]
        else:
            holdings = list(map(sub, columns.balances, columns.cash))
    names = {name: json.dumps(name) for name in {*columns.currencies, *columns.sources}}
    rows = _rows_json(columns, holdings, paper, names, 0, 1) + _rows_json(columns, holdings, paper, names, 1, count)
    if newest_first:
        rows.reverse()
    change = percent = None
    if count and columns.currencies[0] == columns.currencies[-1]:
        earliest = columns.balances[0]
        change = MONEY.subtract(columns.balances[-1], earliest)
        if earliest != 0:
            percent = round(float(change) / float(earliest) * 100, 2)
    summary = {"total_count": count,
               "start_balance": _text(columns.balances[0]) if count else None,
               "end_balance": _text(columns.balances[-1]) if count else None,
               "total_change_amount": _text(change), "total_change_percent": percent,
               "currency": columns.currencies[-1] if count else currency}
    opening = json.dumps(head, separators=_COMPACT)[:-1] + "," if head else "{"
    return "".join((opening, '"snapshots":[', ",".join(rows), "],",
                    json.dumps(summary, separators=_COMPACT)[1:])).encode()


def net_worth(states: list[AccountState], store, missing_ids: list[str]) -> dict[str, Decimal]:
    """Holdings summed per asset (unconverted, exact) from the current states; accounts without
    a known state in this process contribute their newest stored snapshot's holdings."""
    totals: dict[str, Decimal] = {}
    for state in states:
        if state.value is None and not state.holdings:
            continue
        for asset, holding in state.holdings.items():
            totals[asset] = MONEY.add(totals.get(asset, Decimal(0)), holding.amount)
    if missing_ids and store is not None:
        for asset, amount in store.net_worth_by_currency(missing_ids).items():
            totals[asset] = MONEY.add(totals.get(asset, Decimal(0)), amount)
    return {asset: totals[asset] for asset in sorted(totals)}
