"""Shared state of several processes on one configuration: account states, key leases, round requests.

Revision ID: 0004
Revises: 0003
Create Date: 2026-01-24

`account_states` holds one row per account, its latest state as the process that read it wrote
it (followers reload rows by ``updated_at``). `key_leases` says which process may read with an API
key (by fingerprint, never the key) until ``expires_at``, with the key's nonce floor and last call
time so that the next reader continues them; the "closer" row names the process that closes days.
`round_requests` are forced rounds asked of the live readers.
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

AMOUNT = sa.Numeric().with_variant(sa.Text(), "sqlite")
INSTANT = sa.DateTime(timezone=True).with_variant(sa.String(32), "sqlite")
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
NAME = sa.String(255)
CODE = sa.String(32)


def upgrade() -> None:
    op.create_table(
        "account_states",
        sa.Column("account_id", NAME, primary_key=True),
        sa.Column("owner", NAME, nullable=False),
        sa.Column("broker", NAME, nullable=False),
        sa.Column("exchange", NAME, nullable=False),
        sa.Column("status", CODE, nullable=False),
        sa.Column("value", AMOUNT),
        sa.Column("holdings", sa.Text(), nullable=False),
        sa.Column("unpriced", sa.Text(), nullable=False),
        sa.Column("fetched_at", INSTANT),
        sa.Column("error", sa.Text()),
        sa.Column("error_class", NAME),
        sa.Column("reader", NAME, nullable=False),
        sa.Column("read_started_at", INSTANT),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", INSTANT, nullable=False),
        sa.CheckConstraint("status IN ('ok', 'stale', 'error', 'not_configured')", name="ck_account_states_status"),
    )
    op.create_index("ix_account_states_updated_at", "account_states", ["updated_at"])
    op.create_table(
        "key_leases",
        sa.Column("name", NAME, primary_key=True),
        sa.Column("holder", NAME, nullable=False),
        sa.Column("role", CODE, nullable=False),
        sa.Column("expires_at", INSTANT, nullable=False),
        sa.Column("wanted_by", NAME),
        sa.Column("nonce_floor", sa.BigInteger()),
        sa.Column("last_call_at", INSTANT),
        sa.Column("updated_at", INSTANT, nullable=False),
    )
    op.create_table(
        "round_requests",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("requested_by", NAME, nullable=False),
        sa.Column("owner", NAME),
        sa.Column("requested_at", INSTANT, nullable=False),
    )
    op.create_index("ix_round_requests_requested_at", "round_requests", ["requested_at"])


def downgrade() -> None:
    op.drop_index("ix_round_requests_requested_at", table_name="round_requests")
    op.drop_table("round_requests")
    op.drop_table("key_leases")
    op.drop_index("ix_account_states_updated_at", table_name="account_states")
    op.drop_table("account_states")
