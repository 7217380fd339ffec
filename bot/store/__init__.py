"""Persistence of balance history: snapshots, daily closes, trades and alerts.

SQLAlchemy 2 on an SQLite file (default, `default_database_url`) or PostgreSQL
(``postgresql+psycopg://...``), schema managed by Alembic migrations run on open. Importing this
package does no work; `BalanceStore(url)` connects and migrates. See `bot.store.store`.
"""
from bot.store.records import (
    FILTER_SOURCES,
    SOURCES,
    Alert,
    AlertIn,
    AssetRow,
    DailyClose,
    DailyRow,
    Snapshot,
    SnapshotIn,
    Trade,
    TradeIn,
)
from bot.store.store import BalanceStore, StoreOpenError, default_database_url

__all__ = [
    "FILTER_SOURCES", "SOURCES", "Alert", "AlertIn", "AssetRow", "BalanceStore", "DailyClose", "DailyRow", "Snapshot",
    "SnapshotIn", "StoreOpenError", "Trade", "TradeIn", "default_database_url",
]
