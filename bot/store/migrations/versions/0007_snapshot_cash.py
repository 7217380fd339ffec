"""Each snapshot's cash is stored with it: ``snapshots.cash``.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02

A snapshot's cash is the value of its asset row named like its currency (0 when it has asset rows
but none such, or that row has no value); NULL when it has no asset rows at all (no per-asset
detail). It is written with the snapshot, so that a history reads it from the snapshot rows
instead of looking into ``snapshot_assets`` for every row. Existing snapshots get it here, in one
UPDATE. The covering index of the history is rebuilt with the column at its end, so that the
history is still read from the index alone. An amount: NUMERIC (TEXT holding the exact decimal on
SQLite), as ``balance``.
"""
import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

AMOUNT = sa.Numeric().with_variant(sa.Text(), "sqlite")
COVERING = ["account_id", "captured_at", "id", "balance", "currency", "source", "created_at"]

# Only snapshots with asset rows get a value; the others keep NULL. '0' is text on SQLite (as
# every amount there) and a NUMERIC literal on PostgreSQL.
BACKFILL = """
UPDATE snapshots SET cash = COALESCE(
    (SELECT c.value FROM snapshot_assets c WHERE c.snapshot_id = snapshots.id AND c.asset = snapshots.currency),
    '0')
WHERE EXISTS (SELECT 1 FROM snapshot_assets d WHERE d.snapshot_id = snapshots.id)
"""


# Plain ALTER TABLE ADD / DROP COLUMN on both databases (SQLite >= 3.35), never a batch table
# rebuild: on SQLite that drops the old table, and with foreign keys on (the store's connections)
# the drop deletes every snapshot_assets row through ON DELETE CASCADE.

def upgrade() -> None:
    op.drop_index("ix_snapshots_account_time", table_name="snapshots")  # not maintained by the UPDATE
    op.add_column("snapshots", sa.Column("cash", AMOUNT))
    op.execute(BACKFILL)
    op.create_index("ix_snapshots_account_time", "snapshots", [*COVERING, "cash"])


def downgrade() -> None:
    op.drop_index("ix_snapshots_account_time", table_name="snapshots")
    op.drop_column("snapshots", "cash")
    op.create_index("ix_snapshots_account_time", "snapshots", COVERING)
