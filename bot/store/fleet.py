"""The per-key turn of a read in distributed mode, as functions of an open connection.

Consecutive reads of one API key may run on different workers on different hosts (the task
queue runs them one after another, `bot.distributed`). The key's ``key_leases`` row
(``key:<fingerprint>``, as in `bot.store.leases`; never live, so no lease keeper takes it) carries
what the next read must continue: ``nonce_floor`` (the highest nonce sent with the key),
``last_call_at`` and ``counter_level`` (the key's modelled call counter at ``last_call_at``;
NULL: no counter). They are measured so that no worker's clock enters: `begin_turn` gives the
seconds since the key's last call by the database's clock, and `end_turn` sets ``last_call_at``
to the database's clock when the read's state is written (after its call ended, so the next
call is spaced at least as much as asked, and the level, the lane's at the end of the read,
decays from a later instant than its own: never less than modelled). `end_turn` runs in the
transaction that writes the read's state; it replaces the level (the read continued the row's,
under the key's job lock), where the nonce floor only rises.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, case, select, update
from sqlalchemy.dialects import postgresql, sqlite

from bot.store.schema import key_leases
from bot.store.shared import database_now

WORKER_ROLE = "worker"


@dataclass(frozen=True, slots=True)
class KeyTurn:
    """A read's start: the database's clock then (``started_at``), the key's nonce floor, the
    seconds since its last call by the database's clock and its modelled call counter at that
    call (None: unknown, e.g. never read)."""

    name: str | None
    started_at: datetime
    nonce_floor: int | None = None
    since_last_call: float | None = None
    counter_level: float | None = None


def begin_turn(connection: Connection, name: str, holder: str) -> KeyTurn:
    """The continuation of the key ``name`` (its row is created, never live, if it has none)."""
    now = database_now(connection)
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    connection.execute(dialect.insert(key_leases).values(name=name, holder=holder, role=WORKER_ROLE, expires_at=now,
                                                         updated_at=now).on_conflict_do_nothing(index_elements=["name"]))
    c = key_leases.c
    query = select(c.nonce_floor, c.last_call_at, c.counter_level).where(c.name == name)
    if connection.dialect.name == "postgresql":
        query = query.with_for_update()
    floor, last_call, level = connection.execute(query).one()
    since = None if last_call is None else max(0.0, (now - last_call).total_seconds())
    return KeyTurn(name, now, floor, since, level)


def end_turn(connection: Connection, name: str, holder: str, nonce: int | None,
             counter_level: float | None = None) -> None:
    """The read with key ``name`` ended: raise its nonce floor to ``nonce`` (None: no nonce
    sent), set its last call to the database's clock now and its counter level to
    ``counter_level`` (the lane's now; None: no counter)."""
    now = database_now(connection)
    floor = key_leases.c.nonce_floor
    raised = floor if nonce is None else case((floor.is_(None), nonce), (floor < nonce, nonce), else_=floor)
    connection.execute(update(key_leases).where(key_leases.c.name == name).values(
        holder=holder, role=WORKER_ROLE, nonce_floor=raised, last_call_at=now, counter_level=counter_level,
        updated_at=now))
