"""A key's modelled call counter travels with its lease: ``key_leases.counter_level``.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02

Kraken limits private calls by a counter per API key (+1 a call, decaying). The process or
worker that reads a key next continues the previous reader's modelled level (right after the
key's last call, ``last_call_at``), so that a key shared by many accounts stays within its
budget whichever process or host calls. A float; NULL when unknown (no counter, never read).
"""
import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("key_leases") as batch:
        batch.add_column(sa.Column("counter_level", sa.Float()))


def downgrade() -> None:
    with op.batch_alter_table("key_leases") as batch:
        batch.drop_column("counter_level")
