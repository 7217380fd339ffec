"""The trade journal and the alert log: append-only tables, read newest first."""
from __future__ import annotations

from sqlalchemy import Connection, select

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


def add_alert(connection: Connection, alert: AlertIn) -> int:
    values = {name: getattr(alert, name) for name in _ALERT}
    return connection.execute(alerts.insert().values(values).returning(alerts.c.id)).scalar_one()


def recent_alerts(connection: Connection, limit: int) -> list[Alert]:
    rows = connection.execute(
        select(alerts.c.id, *(alerts.c[name] for name in _ALERT))
        .order_by(alerts.c.created_at.desc(), alerts.c.id.desc()).limit(limit))
    return [Alert(*row) for row in rows]
