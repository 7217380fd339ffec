"""The tables, declared once for queries. Migrations (``migrations/versions``) create them.

snapshots         one row per successful account read (intraday; pruned after the retention),
                  with its cash (its holding of its own currency) taken from its assets on write
snapshot_assets   per-asset detail of a snapshot (deleted with it)
accounts          every account that has snapshots (registered with its first one), so that
                  "latest per account" is two index lookups per account, not a scan
daily_days        per user and day: the close's state (provisional/final/carried); kept forever
daily_closes      per user, day, account and asset: amount, price, value; unique on those four
trades            trade journal
alerts            alert log (rows of one alert: same type, user_id, broker; newest row = its state)
revoked_sessions  browser-session ids ended by logout, kept for one session lifetime (web.sessions)
account_states    per account: its latest state, written by the process that read it (bot.store.shared)
key_leases        per API key fingerprint (and the "closer"): which process may read it, until when,
                  with the key's nonce floor, last call time and modelled call counter after that
                  call (bot.store.leases, bot.store.fleet)
round_requests    forced rounds asked of the live readers (--refresh, POST /api/refresh)

A test checks that the migrated database matches this module exactly.
"""
from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Date,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from bot.store.records import (ACCOUNT_STATUSES, CODE_MAX, DAY_STATES, NAME_MAX, SESSION_ID_MAX, SOURCES,
                               STATE_STATUSES, TRADE_SIDES)
from bot.store.types import Amount, UTCDateTime

# 64-bit ids on PostgreSQL; on SQLite an INTEGER PRIMARY KEY (the rowid) is already 64-bit.
Id = BigInteger().with_variant(Integer(), "sqlite")

metadata = MetaData()

SNAPSHOT_COVERING = ("account_id", "captured_at", "id", "balance", "currency", "source", "created_at", "cash")


def _in(column: str, choices: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(c) for c in choices)})"


snapshots = Table(
    "snapshots", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("account_id", String(NAME_MAX), nullable=False),
    Column("owner", String(NAME_MAX), nullable=False),
    Column("broker", String(NAME_MAX), nullable=False),
    Column("balance", Amount(), nullable=False),
    Column("currency", String(CODE_MAX), nullable=False),
    Column("source", String(CODE_MAX), nullable=False),
    Column("captured_at", UTCDateTime(), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    # The value of its asset row named like its currency, written with it: 0 when it has asset rows
    # but none such (or that row has no value), NULL without asset rows (no per-asset detail).
    Column("cash", Amount()),
    CheckConstraint(_in("source", SOURCES), name="ck_snapshots_source"),
    # Covering: an account's history (any source filter) and its newest/previous rows are read
    # from this index alone, contiguously, instead of one table page per row.
    Index("ix_snapshots_account_time", *SNAPSHOT_COVERING),
    Index("ix_snapshots_captured_at", "captured_at"),  # pruning
)

snapshot_assets = Table(
    "snapshot_assets", metadata,
    Column("snapshot_id", Id, ForeignKey("snapshots.id", ondelete="CASCADE",
                                         name="fk_snapshot_assets_snapshot"), primary_key=True),
    Column("asset", String(CODE_MAX), primary_key=True),
    Column("amount", Amount(), nullable=False),
    Column("price", Amount()),
    Column("value", Amount()),
)

accounts = Table(
    "accounts", metadata,
    Column("account_id", String(NAME_MAX), primary_key=True),
    Column("owner", String(NAME_MAX), nullable=False),
    Column("broker", String(NAME_MAX), nullable=False),
)

daily_days = Table(
    "daily_days", metadata,
    Column("user_id", String(NAME_MAX), primary_key=True),
    Column("day", Date(), primary_key=True),
    Column("state", String(CODE_MAX), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    CheckConstraint(_in("state", DAY_STATES), name="ck_daily_days_state"),
    Index("ix_daily_days_state_day", "state", "day"),
)

daily_closes = Table(
    "daily_closes", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("user_id", String(NAME_MAX), nullable=False),
    Column("day", Date(), nullable=False),
    Column("account_id", String(NAME_MAX), nullable=False),
    Column("asset", String(CODE_MAX), nullable=False),
    Column("amount", Amount(), nullable=False),
    Column("price", Amount()),
    Column("value", Amount()),
    Column("base_currency", String(CODE_MAX), nullable=False),
    Column("account_status", String(CODE_MAX), nullable=False),
    UniqueConstraint("user_id", "day", "account_id", "asset", name="uq_daily_closes_user_day_account_asset"),
    ForeignKeyConstraint(["user_id", "day"], ["daily_days.user_id", "daily_days.day"],
                         ondelete="CASCADE", name="fk_daily_closes_day"),
    CheckConstraint(_in("account_status", ACCOUNT_STATUSES), name="ck_daily_closes_account_status"),
)

trades = Table(
    "trades", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("user_id", String(NAME_MAX), nullable=False),
    Column("broker", String(NAME_MAX), nullable=False),
    Column("symbol", String(NAME_MAX), nullable=False),
    Column("side", String(CODE_MAX), nullable=False),
    Column("amount", Amount(), nullable=False),
    Column("price", Amount(), nullable=False),
    Column("pnl", Amount()),
    Column("fee", Amount()),
    Column("executed_at", UTCDateTime(), nullable=False),
    CheckConstraint(_in("side", TRADE_SIDES), name="ck_trades_side"),
    Index("ix_trades_user_time", "user_id", "executed_at", "id"),
)

alerts = Table(
    "alerts", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("type", String(64), nullable=False),
    Column("state", String(CODE_MAX), nullable=False),
    Column("level", String(CODE_MAX), nullable=False),
    Column("user_id", String(NAME_MAX), nullable=False),
    Column("broker", String(NAME_MAX)),
    Column("value", Amount()),
    Column("threshold", Amount()),
    Column("message", Text(), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Index("ix_alerts_created", "created_at", "id"),
    Index("ix_alerts_key", "type", "user_id", "broker", "id"),  # open alerts (journal.open_alerts)
)

revoked_sessions = Table(
    "revoked_sessions", metadata,
    Column("session_id", String(SESSION_ID_MAX), primary_key=True),
    Column("revoked_at", UTCDateTime(), nullable=False),
    Index("ix_revoked_sessions_revoked_at", "revoked_at"),  # forgetting expired revocations
)

account_states = Table(
    "account_states", metadata,
    Column("account_id", String(NAME_MAX), primary_key=True),
    Column("owner", String(NAME_MAX), nullable=False),
    Column("broker", String(NAME_MAX), nullable=False),
    Column("exchange", String(NAME_MAX), nullable=False),
    Column("status", String(CODE_MAX), nullable=False),
    Column("value", Amount()),
    Column("holdings", Text(), nullable=False),  # JSON {asset: [amount, price, value]}: decimal strings or null
    Column("unpriced", Text(), nullable=False),  # JSON [asset]
    Column("fetched_at", UTCDateTime()),
    Column("error", Text()),
    Column("error_class", String(NAME_MAX)),
    Column("reader", String(NAME_MAX), nullable=False),
    Column("read_started_at", UTCDateTime()),  # when the read that produced the state began (reader's clock)
    Column("source", String(CODE_MAX)),  # why it was read (a snapshot source), NULL when not said
    Column("version", BigInteger(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    CheckConstraint(_in("status", STATE_STATUSES), name="ck_account_states_status"),
    Index("ix_account_states_updated_at", "updated_at"),  # followers reload what changed
)

key_leases = Table(
    "key_leases", metadata,
    Column("name", String(NAME_MAX), primary_key=True),
    Column("holder", String(NAME_MAX), nullable=False),
    Column("role", String(CODE_MAX), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    Column("wanted_by", String(NAME_MAX)),
    Column("nonce_floor", BigInteger()),
    Column("last_call_at", UTCDateTime()),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("counter_level", Float()),  # Kraken's per-key call counter as modelled right after last_call_at
)

round_requests = Table(
    "round_requests", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("requested_by", String(NAME_MAX), nullable=False),
    Column("owner", String(NAME_MAX)),
    Column("requested_at", UTCDateTime(), nullable=False),
    Index("ix_round_requests_requested_at", "requested_at"),  # forgetting old requests
)
