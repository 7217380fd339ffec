"""Initial schema: snapshots (+ assets, accounts), daily closes, trades, alerts.

Revision ID: 0001
Revises:
Create Date: 2025-11-21

Types are spelled out here rather than imported from the application so that this migration
keeps creating exactly this schema whatever the application later becomes:
amounts NUMERIC (TEXT holding the exact decimal on SQLite), instants TIMESTAMPTZ (fixed-width
UTC ISO text on SQLite), ids BIGINT (INTEGER, i.e. the rowid, on SQLite).
"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

AMOUNT = sa.Numeric().with_variant(sa.Text(), "sqlite")
INSTANT = sa.DateTime(timezone=True).with_variant(sa.String(32), "sqlite")
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
NAME = sa.String(255)
CODE = sa.String(32)

SOURCES = "'initial_connection', 'account_sync', 'manual_sync', 'scheduled_sync'"


def upgrade() -> None:
    op.create_table(
        "snapshots",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("account_id", NAME, nullable=False),
        sa.Column("owner", NAME, nullable=False),
        sa.Column("broker", NAME, nullable=False),
        sa.Column("balance", AMOUNT, nullable=False),
        sa.Column("currency", CODE, nullable=False),
        sa.Column("source", CODE, nullable=False),
        sa.Column("captured_at", INSTANT, nullable=False),
        sa.Column("created_at", INSTANT, nullable=False),
        sa.CheckConstraint(f"source IN ({SOURCES})", name="ck_snapshots_source"),
    )
    # An account's snapshots in a time range (any source filter), read from the index alone
    # (covering: every column a history returns), and a plain index on time for pruning.
    op.create_index("ix_snapshots_account_time", "snapshots",
                    ["account_id", "captured_at", "id", "balance", "currency", "source", "created_at"])
    op.create_index("ix_snapshots_captured_at", "snapshots", ["captured_at"])

    op.create_table(
        "snapshot_assets",
        sa.Column("snapshot_id", ID, sa.ForeignKey("snapshots.id", ondelete="CASCADE",
                                                   name="fk_snapshot_assets_snapshot"), primary_key=True),
        sa.Column("asset", CODE, primary_key=True),
        sa.Column("amount", AMOUNT, nullable=False),
        sa.Column("price", AMOUNT),
        sa.Column("value", AMOUNT),
    )

    op.create_table(
        "accounts",
        sa.Column("account_id", NAME, primary_key=True),
        sa.Column("owner", NAME, nullable=False),
        sa.Column("broker", NAME, nullable=False),
    )

    op.create_table(
        "daily_days",
        sa.Column("user_id", NAME, primary_key=True),
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("state", CODE, nullable=False),
        sa.Column("updated_at", INSTANT, nullable=False),
        sa.CheckConstraint("state IN ('provisional', 'final', 'carried')", name="ck_daily_days_state"),
    )
    op.create_index("ix_daily_days_state_day", "daily_days", ["state", "day"])

    op.create_table(
        "daily_closes",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("user_id", NAME, nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("account_id", NAME, nullable=False),
        sa.Column("asset", CODE, nullable=False),
        sa.Column("amount", AMOUNT, nullable=False),
        sa.Column("price", AMOUNT),
        sa.Column("value", AMOUNT),
        sa.Column("base_currency", CODE, nullable=False),
        sa.Column("account_status", CODE, nullable=False),
        sa.UniqueConstraint("user_id", "day", "account_id", "asset", name="uq_daily_closes_user_day_account_asset"),
        sa.ForeignKeyConstraint(["user_id", "day"], ["daily_days.user_id", "daily_days.day"],
                                ondelete="CASCADE", name="fk_daily_closes_day"),
        sa.CheckConstraint("account_status IN ('ok', 'stale')", name="ck_daily_closes_account_status"),
    )

    op.create_table(
        "trades",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("user_id", NAME, nullable=False),
        sa.Column("broker", NAME, nullable=False),
        sa.Column("symbol", NAME, nullable=False),
        sa.Column("side", CODE, nullable=False),
        sa.Column("amount", AMOUNT, nullable=False),
        sa.Column("price", AMOUNT, nullable=False),
        sa.Column("pnl", AMOUNT),
        sa.Column("fee", AMOUNT),
        sa.Column("executed_at", INSTANT, nullable=False),
        sa.CheckConstraint("side IN ('buy', 'sell')", name="ck_trades_side"),
    )
    op.create_index("ix_trades_user_time", "trades", ["user_id", "executed_at", "id"])

    op.create_table(
        "alerts",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("state", CODE, nullable=False),
        sa.Column("level", CODE, nullable=False),
        sa.Column("user_id", NAME, nullable=False),
        sa.Column("broker", NAME),
        sa.Column("value", AMOUNT),
        sa.Column("threshold", AMOUNT),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("created_at", INSTANT, nullable=False),
    )
    op.create_index("ix_alerts_created", "alerts", ["created_at", "id"])


def downgrade() -> None:
    for table in ("alerts", "trades", "daily_closes", "daily_days", "accounts", "snapshot_assets", "snapshots"):
        op.drop_table(table)
