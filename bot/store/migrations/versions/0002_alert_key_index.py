"""Index the alert log by alert (type, user, broker): the open alerts are read per alert at start.

Revision ID: 0002
Revises: 0001
Create Date: 2026-01-22

`bot.store.journal.open_alerts` finds each alert's newest row and the start of its current
episode; with this index both are index range scans instead of scans of the whole log.
"""
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_alerts_key", "alerts", ["type", "user_id", "broker", "id"])


def downgrade() -> None:
    op.drop_index("ix_alerts_key", table_name="alerts")
