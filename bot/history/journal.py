"""The trade journal's figures per user: trades, win rate, daily and total P&L, recent trades.

A trade is *closed* when its P&L is known (``pnl`` not None); it *wins* when that P&L is above
zero. ``win_rate`` is winning closed trades / closed trades (a fraction from 0 to 1), None when
the user has no closed trade. ``daily_pnl`` sums the P&L of trades executed today in
``settings.timezone``; ``total_pnl`` of all closed trades; both None when there is nothing to
sum. Everything reads the store only (`BalanceStore.trade_counts`, `closed_trades`,
`recent_trades_by_user`: three queries for any number of users).

`make_trade` validates a trade for `MultiAccountBrokerManager.record_trade`; `load_sample_trades`
fills an empty journal from a JSON file (the example configuration's sample data).
"""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Iterable
from zoneinfo import ZoneInfo

from bot.store import BalanceStore, Trade, TradeIn
from bot.core.money import MONEY
from bot.core.timefmt import utc_from_timestamp
from bot.store.records import TRADE_SIDES


@dataclass(frozen=True, slots=True)
class TradeStats:
    total_trades: int
    closed_trades: int
    winning_trades: int
    daily_pnl: Decimal | None
    total_pnl: Decimal | None
    recent: tuple[Trade, ...]

    @property
    def win_rate(self) -> float | None:
        return None if not self.closed_trades else self.winning_trades / self.closed_trades


EMPTY = TradeStats(0, 0, 0, None, None, ())


def day_bounds(timezone: str, now: dt.datetime | None = None) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) of today in ``timezone``, as aware datetimes."""
    zone = ZoneInfo(timezone)
    today = (now or dt.datetime.now(dt.timezone.utc)).astimezone(zone).date()
    start = dt.datetime.combine(today, dt.time(), zone)
    end = dt.datetime.combine(today + dt.timedelta(days=1), dt.time(), zone)
    return start, end


def _add(total: Decimal | None, value: Decimal) -> Decimal:
    return value if total is None else MONEY.add(total, value)


def trade_stats(store: BalanceStore, timezone: str, recent_limit: int = 5, user_ids: Iterable[str] | None = None,
                now: dt.datetime | None = None) -> dict[str, TradeStats]:
    """user_id -> TradeStats for every user with trades (of ``user_ids``, or everyone); a user
    without trades is absent (use `EMPTY`)."""
    ids = None if user_ids is None else list(user_ids)
    start, end = day_bounds(timezone, now)
    counts = store.trade_counts(ids)
    closed: dict[str, list] = {}
    for user, pnl, executed in store.closed_trades(ids):
        entry = closed.setdefault(user, [0, 0, None, None])
        entry[0] += 1
        entry[1] += pnl > 0
        entry[2] = _add(entry[2], pnl)
        if start <= executed < end:
            entry[3] = _add(entry[3], pnl)
    recent = store.recent_trades_by_user(ids, recent_limit) if recent_limit > 0 else {}
    result = {}
    for user, count in counts.items():
        n_closed, wins, total, daily = closed.get(user, (0, 0, None, None))
        result[user] = TradeStats(count, n_closed, wins, daily, total, tuple(recent.get(user, ())))
    return result


# --------------------------------------------------------------------------- writing


def _decimal(name: str, value, optional: bool = False, positive: bool = False) -> Decimal | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or isinstance(value, float) or not isinstance(value, (Decimal, int, str)):
        raise ValueError(f"{name} must be a Decimal (or int or decimal string), got {type(value).__name__}")
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise ValueError(f"{name} must be a decimal number, got {value!r}") from None
    if not number.is_finite():
        raise ValueError(f"{name} must be finite, got {value!r}")
    if positive and number <= 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")
    return number


def make_trade(user_id: str, broker: str, symbol: str, side: str, amount, price, pnl=None, fee=None,
               timestamp: dt.datetime | float | None = None) -> TradeIn:
    """A validated trade: side buy|sell, amount and price positive decimals (floats refused as
    inexact), pnl/fee decimals or None, timestamp an aware datetime or epoch seconds (default now).
    Raises ValueError."""
    if not isinstance(side, str) or side.lower() not in TRADE_SIDES:
        raise ValueError(f"side must be 'buy' or 'sell', got {side!r}")
    if timestamp is None:
        executed = dt.datetime.now(dt.timezone.utc)
    elif isinstance(timestamp, dt.datetime):
        executed = timestamp
    elif isinstance(timestamp, (int, float)) and not isinstance(timestamp, bool):
        executed = utc_from_timestamp(timestamp)
    else:
        raise ValueError(f"timestamp must be a timezone-aware datetime or epoch seconds, got {timestamp!r}")
    return TradeIn(user_id=user_id, broker=broker, symbol=symbol, side=side.lower(),
                   amount=_decimal("amount", amount, positive=True), price=_decimal("price", price, positive=True),
                   pnl=_decimal("pnl", pnl, optional=True), fee=_decimal("fee", fee, optional=True),
                   executed_at=executed)


def load_sample_trades(store: BalanceStore, path: Path, user_ids: Iterable[str],
                       now: dt.datetime | None = None) -> int:
    """Write the sample trades of ``path`` into the journal if it holds no trade at all; return how
    many were written. Each entry: user_id, broker, symbol, side, amount, price, pnl, fee and
    ``hours_ago`` (executed that long before ``now``, so the sample always has trades "today").
    Entries for users not in ``user_ids`` are skipped."""
    if store.trade_counts():
        return 0
    entries = json.loads(Path(path).read_text(encoding="utf-8"), parse_float=Decimal)["trades"]
    now = now or dt.datetime.now(dt.timezone.utc)
    known = set(user_ids)
    written = 0
    for entry in entries:
        if entry["user_id"] not in known:
            continue
        store.add_trade(make_trade(entry["user_id"], entry["broker"], entry["symbol"], entry["side"],
                                   entry["amount"], entry["price"], entry.get("pnl"), entry.get("fee"),
                                   now - dt.timedelta(hours=float(entry.get("hours_ago", 0)))))
        written += 1
    return written
