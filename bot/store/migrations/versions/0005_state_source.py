"""Why each shared state was read: ``account_states.source``.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01

In distributed mode the workers read and the monitor records the history of what they read; the
snapshot ``source`` (scheduled_sync, manual_sync, ...) of a state travels with it in this column
(NULL when the reader did not say).
"""
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("account_states") as batch:
        batch.add_column(sa.Column("source", sa.String(32)))


def downgrade() -> None:
    with op.batch_alter_table("account_states") as batch:
        batch.drop_column("source")
