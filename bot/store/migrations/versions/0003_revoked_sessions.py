"""Revoked browser sessions: a session id ended by logout is refused by every web process.

Revision ID: 0003
Revises: 0002
Create Date: 2026-01-23

`web.sessions` puts a random id in each browser session; ``POST /logout`` records it here, and
every request made with a session cookie is refused while its id is listed. A row is needed only
as long as a cookie carrying that id can still be valid (the session lifetime), so rows older
than that are deleted when a new one is written (``ix_revoked_sessions_revoked_at``).
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

INSTANT = sa.DateTime(timezone=True).with_variant(sa.String(32), "sqlite")


def upgrade() -> None:
    op.create_table(
        "revoked_sessions",
        sa.Column("session_id", sa.String(64), primary_key=True),
        sa.Column("revoked_at", INSTANT, nullable=False),
    )
    op.create_index("ix_revoked_sessions_revoked_at", "revoked_sessions", ["revoked_at"])


def downgrade() -> None:
    op.drop_index("ix_revoked_sessions_revoked_at", table_name="revoked_sessions")
    op.drop_table("revoked_sessions")
