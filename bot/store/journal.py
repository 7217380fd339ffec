"""The trade journal and the alert log: append-only tables, read newest first.

The alert log holds every notification of every alert; the rows of one alert share (type,
user_id, broker), and its newest row says whether it is open ("firing") or not (`open_alerts`).
"""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import Connection, case, func, select

from bot.store.records import Alert, AlertIn, Trade, TradeIn
from bot.store.schema import alerts, trades

_TRADE = ("user_id", "broker", "symbol", "side", "amount", "price", "pnl", "fee", "executed_at")
_ALERT = ("type", "state", "level", "user_id", "broker", "value", "threshold", "message", "created_at")


def add_trade(connection: Connection, trade: TradeIn) -> int:
    values = {name: getattr(trade, name) for name in _TRADE}
    return connection.execute(trades.insert().values(values).returning(trades.c.id)).scalar_one()


def recent_trades(connection: Connection, user_id: str, limit: int) -> list[Trade]:
    rows = connection.execute(
        select(trades.c.id, *(trades.c[name] for name in _TRADE)).where(trades.c.user_id == user_id)
        .order_by(trades.c.executed_at.desc(), trades.c.id.desc()).limit(limit))
    return [Trade(*row) for row in rows]


def latest_trade_id(connection: Connection) -> int | None:
    return connection.execute(select(func.max(trades.c.id))).scalar_one()


def trade_counts(connection: Connection, user_ids: list[str] | None) -> dict[str, int]:
    """user_id -> number of journaled trades."""
    query = select(trades.c.user_id, func.count()).group_by(trades.c.user_id)
    if user_ids is not None:
        query = query.where(trades.c.user_id.in_(user_ids))
    return {user: count for user, count in connection.execute(query)}


def closed_trades(connection: Connection, user_ids: list[str] | None) -> list[tuple[str, Decimal, datetime]]:
    """(user_id, pnl, executed_at) of every trade with a known P&L (summed in Python: amounts are
    text on SQLite)."""
    query = select(trades.c.user_id, trades.c.pnl, trades.c.executed_at).where(trades.c.pnl.is_not(None))
    if user_ids is not None:
        query = query.where(trades.c.user_id.in_(user_ids))
    return [tuple(row) for row in connection.execute(query)]


def recent_trades_by_user(connection: Connection, user_ids: list[str] | None, limit: int) -> dict[str, list[Trade]]:
    """user_id -> its `limit` newest trades, newest first: one query (a window function)."""
    rank = func.row_number().over(partition_by=trades.c.user_id,
                                  order_by=(trades.c.executed_at.desc(), trades.c.id.desc())).label("rank")
    inner = select(trades.c.id, *(trades.c[name] for name in _TRADE), rank)
    if user_ids is not None:
        inner = inner.where(trades.c.user_id.in_(user_ids))
    ranked = inner.subquery("ranked")
    rows = connection.execute(
        select(*(ranked.c[name] for name in ("id",) + _TRADE)).where(ranked.c.rank <= limit)
        .order_by(ranked.c.user_id, ranked.c.rank))
    result: dict[str, list[Trade]] = {}
    for row in rows:
        result.setdefault(row.user_id, []).append(Trade(*row))
    return result


def add_alert(connection: Connection, alert: AlertIn) -> int:
    values = {name: getattr(alert, name) for name in _ALERT}
    return connection.execute(alerts.insert().values(values).returning(alerts.c.id)).scalar_one()


def recent_alerts(connection: Connection, limit: int) -> list[Alert]:
    rows = connection.execute(
        select(alerts.c.id, *(alerts.c[name] for name in _ALERT))
        .order_by(alerts.c.created_at.desc(), alerts.c.id.desc()).limit(limit))
    return [Alert(*row) for row in rows]


def open_alerts(connection: Connection) -> list[tuple[Alert, datetime]]:
    """Each alert whose newest row is "firing": that row, and when its episode began (the first
    "firing" row after the alert's last other row). Ordered by id."""
    last = (select(alerts.c.type, alerts.c.user_id, alerts.c.broker, func.max(alerts.c.id).label("last_id"),
                   func.max(case((alerts.c.state != "firing", alerts.c.id))).label("closed_id"))
            .group_by(alerts.c.type, alerts.c.user_id, alerts.c.broker).subquery("last"))
    episode = alerts.alias("episode")
    began = (select(func.min(episode.c.created_at))
             .where(episode.c.type == alerts.c.type, episode.c.user_id == alerts.c.user_id,
                    episode.c.broker.is_not_distinct_from(alerts.c.broker),
                    episode.c.id > func.coalesce(last.c.closed_id, 0))
             .scalar_subquery())
    rows = connection.execute(
        select(alerts.c.id, *(alerts.c[name] for name in _ALERT), began.label("began"))
        .join(last, last.c.last_id == alerts.c.id).where(alerts.c.state == "firing").order_by(alerts.c.id))
    return [(Alert(*row[:-1]), row[-1]) for row in rows]
