"""Leases and round requests (``key_leases``, ``round_requests``), as functions of an open connection.

A lease row names who may act for a resource until ``expires_at``: ``key:<fingerprint>`` (read with
that API key; the fingerprint is a hash, never the key) or ``closer`` (close the days). Its
holder renews it while alive; a holder that stops releases it by expiring it at once (the row is
kept: its ``nonce_floor``, ``last_call_at`` and ``counter_level``, the key's modelled call counter
right after that call, are how the next reader continues the key). A
``reader`` that wants a lease an ``auto`` process holds writes itself in ``wanted_by``; the
holder hands it over at its next renewal (the lease then stays reserved for that reader).

`claim` runs in one write transaction: it locks every lease row (PostgreSQL ``SELECT ... FOR
UPDATE``; SQLite: the ``BEGIN IMMEDIATE`` of the write transaction), decides with the database's
clock, and writes. Two processes claiming at once are serialised; exactly one gets a free lease
(a new row is inserted with ``ON CONFLICT DO NOTHING ... RETURNING``, so a lost race is seen).

Floors merge conservatively and never go down: `claim` and `release` keep the higher nonce floor,
the later last call and the higher counter level of the row and the holder's (each where known).
`write_floors` (the holder's, after its reads; possibly computed before the key was taken over
and taken back, written after) keeps the higher nonce floor and the later last call, and takes
the given counter level only with a last call not older than the row's (a level belongs to its
call). It does so in SQL, with CASE expressions (SQLite's ``max()`` is NULL if any argument is,
PostgreSQL's ``GREATEST`` skips NULLs) on parameters bound through the columns' types (SQLite
compares the timestamps as text, which is time order only in `UTCDateTime`'s form).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Iterable

from sqlalchemy import Connection, and_, bindparam, case, cast, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from bot.store.schema import key_leases, round_requests
from bot.store.shared import ROUNDS_CHANNEL, database_now, notify

CLOSER = "closer"
KEY_PREFIX = "key:"
REQUESTS_KEPT = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class Lease:
    name: str
    holder: str
    role: str
    expires_at: datetime
    wanted_by: str | None = None
    nonce_floor: int | None = None
    last_call_at: datetime | None = None
    counter_level: float | None = None

    def live(self, now: datetime) -> bool:
        return self.expires_at > now


@dataclass(frozen=True, slots=True)
class Claimed:
    """What one `claim` found and did: ``held`` (name → the lease as it now is, held by the
    claimant), ``others`` (name → a live lease of someone else), ``now`` (the database's clock)."""

    held: dict[str, Lease]
    others: dict[str, Lease]
    now: datetime


@dataclass(frozen=True, slots=True)
class Floors:
    """A key's continuation: its last nonce, the end of its last call and its modelled call
    counter right after that call (None: unknown, or no counter)."""

    name: str
    nonce_floor: int | None
    last_call_at: datetime | None
    counter_level: float | None = None


def _row(lease: Lease, now: datetime) -> dict:
    return {"name": lease.name, "holder": lease.holder, "role": lease.role, "expires_at": lease.expires_at,
            "wanted_by": lease.wanted_by, "nonce_floor": lease.nonce_floor, "last_call_at": lease.last_call_at,
            "counter_level": lease.counter_level, "updated_at": now}


def read_leases(connection: Connection, lock: bool = False) -> dict[str, Lease]:
    query = select(key_leases)
    if lock and connection.dialect.name == "postgresql":
        query = query.with_for_update()
    return {row.name: Lease(row.name, row.holder, row.role, row.expires_at, row.wanted_by, row.nonce_floor,
                            row.last_call_at, row.counter_level) for row in connection.execute(query)}


def claim(connection: Connection, holder: str, role: str, wanted: Iterable[str], handing_over: Iterable[str],
          duration: timedelta, floors: dict[str, Floors], watching: Iterable[str] = ()) -> Claimed:
    """Renew, take or ask for the leases ``wanted`` (names); expire the ones ``handing_over``
    (held by ``holder``: a reader asked for them). ``floors`` are written with the leases renewed
    or handed over. A ``reader`` marks itself ``wanted_by`` on live leases of non-readers (the
    closer excepted); a lease expired by its holder for the reader that wants it stays reserved
    for that reader for one ``duration``. ``others`` holds the leases of other holders among the
    names ``wanted`` and ``watching`` (a follower wants none, and watches its keys to know who
    reads them)."""
    now = database_now(connection)
    current = read_leases(connection, lock=True)
    expires = now + duration
    held, others, writes, inserts = {}, {}, [], []
    for name in set(handing_over):
        lease = current.get(name)
        if lease is not None and lease.holder == holder:
            writes.append(_with_floors(replace(lease, expires_at=now), floors))
    handed = {lease.name for lease in writes}
    for name in set(wanted) - handed:
        lease = current.get(name)
        if lease is None:
            inserts.append(Lease(name, holder, role, expires))
            continue
        mine = lease.holder == holder
        reserved = lease.wanted_by not in (None, holder) and now - lease.expires_at < duration
        if mine or (not lease.live(now) and not reserved):
            wanted_by = lease.wanted_by if mine and lease.wanted_by != holder else None
            taken = _with_floors(replace(lease, holder=holder, role=role, expires_at=expires, wanted_by=wanted_by),
                                 floors)
            writes.append(taken)
            held[name] = taken
            continue
        if role == "reader" and lease.role != "reader" and lease.wanted_by is None and name != CLOSER:
            lease = replace(lease, wanted_by=holder)
            writes.append(lease)
        others[name] = lease
    for name in set(watching) - set(wanted) - handed:
        lease = current.get(name)
        if lease is not None and lease.holder != holder:
            others[name] = lease
    if writes:
        connection.execute(update(key_leases).where(key_leases.c.name == bindparam("b_name")).values(
            holder=bindparam("holder"), role=bindparam("role"), expires_at=bindparam("expires_at"),
            wanted_by=bindparam("wanted_by"), nonce_floor=bindparam("nonce_floor"),
            last_call_at=bindparam("last_call_at"), counter_level=bindparam("counter_level"),
            updated_at=bindparam("updated_at")),
            [{**_row(lease, now), "b_name": lease.name} for lease in writes])
    if inserts:
        dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
        for start in range(0, len(inserts), 500):
            chunk = inserts[start:start + 500]
            statement = (dialect.insert(key_leases).values([_row(lease, now) for lease in chunk])
                         .on_conflict_do_nothing(index_elements=["name"]).returning(key_leases.c.name))
            got = set(connection.execute(statement).scalars())
            held.update({lease.name: lease for lease in chunk if lease.name in got})
    return Claimed(held, others, now)


def _with_floors(lease: Lease, floors: dict[str, Floors]) -> Lease:
    given = floors.get(lease.name)
    if given is None:
        return lease
    nonce = given.nonce_floor if lease.nonce_floor is None or (given.nonce_floor or 0) > lease.nonce_floor \
        else lease.nonce_floor
    last = given.last_call_at if lease.last_call_at is None or (given.last_call_at is not None
                                                               and given.last_call_at > lease.last_call_at) \
        else lease.last_call_at
    level = given.counter_level if lease.counter_level is None or (given.counter_level is not None
                                                                   and given.counter_level > lease.counter_level) \
        else lease.counter_level
    return replace(lease, nonce_floor=nonce, last_call_at=last, counter_level=level)


def release(connection: Connection, holder: str, names: Iterable[str], floors: dict[str, Floors]) -> None:
    """Expire ``holder``'s leases of ``names`` now, writing their ``floors``."""
    now = database_now(connection)
    current = read_leases(connection, lock=True)
    rows = [_with_floors(replace(lease, expires_at=now), floors)
            for name in set(names) for lease in [current.get(name)] if lease is not None and lease.holder == holder]
    if rows:
        connection.execute(update(key_leases).where(key_leases.c.name == bindparam("b_name")).values(
            expires_at=bindparam("expires_at"), wanted_by=bindparam("wanted_by"),
            nonce_floor=bindparam("nonce_floor"), last_call_at=bindparam("last_call_at"),
            counter_level=bindparam("counter_level"), updated_at=bindparam("updated_at")),
            [{**_row(lease, now), "b_name": lease.name} for lease in rows])


def write_floors(connection: Connection, holder: str, floors: Iterable[Floors]) -> None:
    """Record the continuation of keys ``holder`` holds (a no-op for leases it does not hold);
    never lowers a floor: the row keeps the higher nonce floor and the later last call (None
    given: the row's; None in the row: the given), and takes the given counter level only if
    its last call is not older than the row's (None given: the row's level, unless that is None)."""
    rows = [{"b_name": f.name, "b_holder": holder, "b_nonce": f.nonce_floor, "b_last": f.last_call_at,
             "b_level": f.counter_level} for f in floors]
    if rows:
        c = key_leases.c
        nonce = bindparam("b_nonce", type_=c.nonce_floor.type)
        last = bindparam("b_last", type_=c.last_call_at.type)
        # PostgreSQL must know each parameter's type even when it is NULL: SQLAlchemy casts the
        # integer and timestamp parameters, not the float one
        level = cast(bindparam("b_level", type_=c.counter_level.type), c.counter_level.type)
        statement = update(key_leases).where(and_(c.name == bindparam("b_name"), c.holder == bindparam("b_holder")))
        connection.execute(statement.values(
            nonce_floor=_higher(c.nonce_floor, nonce), last_call_at=_higher(c.last_call_at, last),
            counter_level=_level_of_the_later_call(c.counter_level, level, c.last_call_at, last)), rows)


def _higher(current, given):
    """The higher of ``current`` and ``given``, either where the other is NULL (NULL if both are;
    a NULL ``given`` compares as unknown, so ``current`` stays)."""
    return case((current.is_(None), given), (given > current, given), else_=current)


def _level_of_the_later_call(current, given, current_call, given_call):
    """``given`` (a level) where ``current`` is NULL, or where ``given_call`` is known and not older
    than ``current_call``; else ``current``. NULL given: ``current``."""
    return case((given.is_(None), current), (current.is_(None), given), (given_call.is_(None), current),
                (current_call.is_(None), given), (given_call >= current_call, given), else_=current)


# --------------------------------------------------------------------------- round requests


@dataclass(frozen=True, slots=True)
class RoundRequest:
    id: int
    requested_by: str
    owner: str | None  # None: every account
    requested_at: datetime


def add_request(connection: Connection, requested_by: str, owner: str | None) -> RoundRequest:
    """Ask the live readers for a forced round (of ``owner``'s accounts, or all); requests older
    than `REQUESTS_KEPT` are forgotten in the same transaction."""
    now = database_now(connection)
    connection.execute(delete(round_requests).where(round_requests.c.requested_at < now - REQUESTS_KEPT))
    new_id = connection.execute(insert(round_requests).values(requested_by=requested_by, owner=owner,
                                                              requested_at=now).returning(round_requests.c.id)).scalar_one()
    notify(connection, ROUNDS_CHANNEL)
    return RoundRequest(new_id, requested_by, owner, now)


def requests_after(connection: Connection, last_id: int) -> list[RoundRequest]:
    query = select(round_requests).where(round_requests.c.id > last_id).order_by(round_requests.c.id)
    return [RoundRequest(r.id, r.requested_by, r.owner, r.requested_at) for r in connection.execute(query)]


def last_request_id(connection: Connection) -> int:
    return connection.execute(select(func.coalesce(func.max(round_requests.c.id), 0))).scalar_one()
