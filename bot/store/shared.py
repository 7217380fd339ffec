"""The shared account states (``account_states``), as functions of an open connection.

One row per account: its latest `AccountState` as the process that read it wrote it, with that
process's identity (``reader``, ``host:pid/tag``), when that read began (``read_started_at``, the
reader's clock: a forced round asked for at T is done when its reads began after T), a
``version`` that every upsert increments and
``updated_at``, the database's clock at the write (PostgreSQL ``clock_timestamp()``, SQLite this
host's clock: every process on one SQLite file runs on one host). Holdings are JSON text of
decimal strings (``{"BTC": ["0.5", "50000", "25000.00"]}``, null for an unknown price or value), so
amounts come back exactly as they went in.

Followers reload the rows whose ``updated_at`` is at most `OVERLAP` older than the newest they
have seen (``ix_account_states_updated_at``): a transaction that began before another one's but
committed after it is still found; the (version, reader) pair says whether a row really changed.
On PostgreSQL every write also sends ``NOTIFY`` on `STATES_CHANNEL` (delivered at commit).
"""
from __future__ import annotations

import json
import weakref
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from sqlalchemy import Connection, select, text
from sqlalchemy.dialects import postgresql, sqlite

from bot.core.state import AccountState, Holding, Status
from bot.store.schema import account_states

STATES_CHANNEL = "multibalance_states"
ROUNDS_CHANNEL = "multibalance_rounds"
OVERLAP = timedelta(seconds=5)
_COLUMNS = ("owner", "broker", "exchange", "status", "value", "holdings", "unpriced", "fetched_at", "error",
            "error_class", "reader", "read_started_at", "source", "updated_at")


@dataclass(frozen=True, slots=True)
class SharedState:
    """One row: the state, who read it, its version, when it was written and when its read began
    (aware UTC; ``read_started_at`` None when unknown), and why it was read (``source``, a
    snapshot source, None when the reader did not say)."""

    state: AccountState
    reader: str
    version: int
    updated_at: datetime
    read_started_at: datetime | None = None
    source: str | None = None


def database_now(connection: Connection) -> datetime:
    """The clock every process on this database agrees on (see the module docstring)."""
    if connection.dialect.name == "postgresql":
        return connection.execute(text("SELECT clock_timestamp()")).scalar_one()
    return datetime.now(timezone.utc)


def notify(connection: Connection, channel: str) -> None:
    """PostgreSQL: wake the listeners of ``channel`` when this transaction commits; SQLite: nothing
    (its followers poll ``PRAGMA data_version``)."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_notify(:channel, '')"), {"channel": channel})


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _decimal(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def _instant(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, timezone.utc)


def state_values(state: AccountState, reader: str, now: datetime, read_started: float | None = None,
                 source: str | None = None) -> dict:
    """The row of ``state`` (without ``version``); ``read_started`` epoch seconds or None."""
    holdings = {asset: [_text(h.amount), _text(h.price), _text(h.value)] for asset, h in state.holdings.items()}
    return {"account_id": state.account_id, "owner": state.owner, "broker": state.broker,
            "exchange": state.exchange, "status": state.status.value, "value": state.value,
            "holdings": json.dumps(holdings, separators=(",", ":")),
            "unpriced": json.dumps(list(state.unpriced), separators=(",", ":")),
            "fetched_at": _instant(state.fetched_at), "error": state.error, "error_class": state.error_class,
            "reader": reader, "read_started_at": _instant(read_started), "source": source, "updated_at": now}


def upsert_states(connection: Connection, states: list[AccountState], reader: str,
                  read_started: dict[str, float] | None = None, sources: dict[str, str] | None = None) -> datetime:
    """Write ``states`` (one row each, replaced whole, ``version`` + 1); ``read_started``: account
    id → when its read began (epoch seconds); ``sources``: account id → why it was read.
    Returns the rows' ``updated_at``."""
    now = database_now(connection)
    if not states:
        return now
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    insert = dialect.insert(account_states)
    update = {name: insert.excluded[name] for name in _COLUMNS}
    update["version"] = account_states.c.version + 1
    statement = insert.on_conflict_do_update(index_elements=["account_id"], set_=update)
    started, why = read_started or {}, sources or {}
    connection.execute(statement, [{**state_values(s, reader, now, started.get(s.account_id), why.get(s.account_id)),
                                    "version": 1} for s in states])
    notify(connection, STATES_CHANNEL)
    return now


def _state_of(row) -> AccountState:
    holdings = {asset: Holding(Decimal(amount), _decimal(price), _decimal(value))
                for asset, (amount, price, value) in json.loads(row.holdings).items()}
    return AccountState(account_id=row.account_id, owner=row.owner, broker=row.broker, exchange=row.exchange,
                        status=Status(row.status), value=row.value, holdings=holdings,
                        unpriced=tuple(json.loads(row.unpriced)),
                        fetched_at=None if row.fetched_at is None else row.fetched_at.timestamp(),
                        error=row.error, error_class=row.error_class)


def load_states(connection: Connection, since: datetime | None = None,
                except_reader: str | None = None) -> list[SharedState]:
    """Every row (``since`` None), or those written at or after ``since`` - `OVERLAP`; without
    the rows ``except_reader`` wrote."""
    query = select(account_states)
    if since is not None:
        query = query.where(account_states.c.updated_at >= since - OVERLAP)
    if except_reader is not None:
        query = query.where(account_states.c.reader != except_reader)
    memo = _memo(connection)
    return [_shared(row, memo) for row in connection.execute(query)]


def load_state(connection: Connection, account_id: str) -> SharedState | None:
    """The row of one account, or None."""
    row = connection.execute(select(account_states).where(account_states.c.account_id == account_id)).first()
    return None if row is None else _shared(row)


# The decoded row (`SharedState`) last loaded per account, per database (engine): a follower reloads
# every row of the last `OVERLAP` seconds whenever anything commits (twice a second while a round
# is being written), and decoding the same ~1,000 unchanged rows again and again (JSON, Decimals,
# the dataclasses) was most of a following web process's CPU. A row is the same row while its
# (version, reader, updated_at) is: every upsert increments ``version`` and sets ``updated_at``.
# One entry per account (replaced), so the memory is bounded by the accounts; entries are
# immutable values, replaced whole, so threads that race store the same thing.
_decoded: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _shared(row, memo: dict | None = None) -> SharedState:
    key = (row.version, row.reader, row.updated_at)
    cached = None if memo is None else memo.get(row.account_id)
    if cached is not None and cached[0] == key:
        return cached[1]  # the same upsert: the same values, read_started_at and source included
    shared = SharedState(_state_of(row), row.reader, row.version, row.updated_at, row.read_started_at, row.source)
    if memo is not None:
        memo[row.account_id] = (key, shared)
    return shared


def _memo(connection: Connection) -> dict:
    engine = connection.engine
    memo = _decoded.get(engine)
    if memo is None:
        memo = _decoded.setdefault(engine, {})
    return memo
