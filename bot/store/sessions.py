"""Revoked browser-session ids (``POST /logout``), shared by every process on the database.

A row says "this session id was ended at ``revoked_at``". Rows are kept only while a cookie that
carries the id can still be valid (the session lifetime, which the caller passes); older rows are
deleted when a new one is written. Recording an id twice is harmless (the first time is kept).
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, delete, select
from sqlalchemy.dialects import postgresql, sqlite

from bot.store.schema import revoked_sessions


def revoke(connection: Connection, session_id: str, now: datetime, forget_before: datetime) -> None:
    """Record ``session_id`` as revoked at ``now``; forget revocations older than ``forget_before``."""
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    insert = dialect.insert(revoked_sessions).values(session_id=session_id, revoked_at=now)
    connection.execute(insert.on_conflict_do_nothing(index_elements=["session_id"]))
    connection.execute(delete(revoked_sessions).where(revoked_sessions.c.revoked_at < forget_before))


def is_revoked(connection: Connection, session_id: str) -> bool:
    query = select(revoked_sessions.c.session_id).where(revoked_sessions.c.session_id == session_id)
    return connection.execute(query).first() is not None
