"""Snapshot writes, pruning and the latest snapshot per account, as functions of an open
connection (the caller owns the transaction). Histories are in `bot.store.timeline`.

Order: an account's snapshots are ordered by ``(captured_at, id)``; "newest" and "previous"
always mean that order. Nothing is maintained on write to answer "latest per account": each
account's newest and previous snapshot ids are two backward lookups in the covering index
``ix_snapshots_account_time`` (`_latest_pairs`), a few milliseconds for hundreds of accounts,
and always consistent with the rows themselves. The `accounts` table lists the accounts to look
up; each is registered in the transaction that writes its first snapshot.

Writes are plain inserts, so concurrent writers need no lock beyond the database's own (SQLite:
the BEGIN IMMEDIATE write lock, which also makes `bulk.next_ids` safe; PostgreSQL: sequence ids).
"""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Iterable, Sequence

from sqlalchemy import Connection, delete, func, select, union, union_all
from sqlalchemy.dialects import postgresql, sqlite

from bot.store import bulk
from bot.core.money import MONEY
from bot.store.records import AssetRow, Snapshot, SnapshotIn
from bot.store.schema import accounts, snapshot_assets, snapshots

_CHUNK = 500  # ids per IN (...) list: far below SQLite's bound-parameter limit
_SNAPSHOT_COLUMNS = ("id", "account_id", "owner", "broker", "balance", "currency", "source", "captured_at",
                     "created_at", "cash")
_ZERO = Decimal(0)
_ASSET_COLUMNS = ("snapshot_id", "asset", "amount", "price", "value")


def _chunks(items: list, size: int = _CHUNK):
    for start in range(0, len(items), size):
        yield items[start:start + size]


def change(balance: Decimal, currency: str, previous: tuple[Decimal, str] | None) -> tuple[Decimal | None, float | None]:
    """Change versus `previous` (balance, currency): (None, None) without one or across currencies;
    percent None when the previous balance is 0. Same rule as `timeline._chain`."""
    if previous is None or previous[1] != currency:
        return None, None
    amount = MONEY.subtract(balance, previous[0])
    return amount, (float(amount) / float(previous[0]) * 100 if float(previous[0]) else None)


# --- writes -------------------------------------------------------------------------------------

def cash_of(item: SnapshotIn) -> Decimal | None:
    """The cash `item` is stored with (``snapshots.cash``): the value of its asset row named like
    its currency; 0 when it has asset rows but none such, or that row has no value; None when it
    has no asset rows (no per-asset detail: its split is unknown)."""
    if not item.assets:
        return None
    for asset in item.assets:
        if asset.asset == item.currency:
            return _ZERO if asset.value is None else asset.value
    return _ZERO


def insert_snapshots(connection: Connection, items: Sequence[SnapshotIn], created_at: datetime) -> list[int]:
    """Insert `items` with their assets and their cash (`cash_of`), register new accounts; return
    the new ids in order."""
    if not items:
        return []
    ids = bulk.next_ids(connection, snapshots, len(items))
    bulk.insert(connection, snapshots, _SNAPSHOT_COLUMNS, [
        (id_, s.account_id, s.owner, s.broker, s.balance, s.currency, s.source, s.captured_at, created_at,
         cash_of(s))
        for s, id_ in zip(items, ids)])
    bulk.insert(connection, snapshot_assets, _ASSET_COLUMNS, [
        (id_, a.asset, a.amount, a.price, a.value) for s, id_ in zip(items, ids) for a in s.assets])
    # Register accounts seen for the first time, from the rows just written (no data sent back).
    # In account order, so that two PostgreSQL writers registering the same new accounts wait for
    # each other in the same order instead of deadlocking.
    new = (select(snapshots.c.account_id, func.min(snapshots.c.owner), func.min(snapshots.c.broker))
           .where(snapshots.c.id >= ids[0], snapshots.c.id <= ids[-1])
           .group_by(snapshots.c.account_id).order_by(snapshots.c.account_id))
    insert = (postgresql if connection.dialect.name == "postgresql" else sqlite).insert(accounts)
    connection.execute(insert.from_select(["account_id", "owner", "broker"], new).on_conflict_do_nothing())
    return ids


def prune(connection: Connection, older_than: datetime) -> int:
    """Delete snapshots captured before `older_than`, except each account's newest and previous."""
    pairs = _latest_pairs(None)
    kept = union(select(pairs.c.newest_id), select(pairs.c.previous_id).where(pairs.c.previous_id.is_not(None)))
    doomed = select(snapshots.c.id).where(snapshots.c.captured_at < older_than, snapshots.c.id.not_in(kept))
    connection.execute(delete(snapshot_assets).where(snapshot_assets.c.snapshot_id.in_(doomed)))
    return connection.execute(delete(snapshots).where(snapshots.c.id.in_(doomed))).rowcount


# --- reads --------------------------------------------------------------------------------------

def _latest_pairs(account_ids: list[str] | None):
    """Subquery (account_id, newest_id, previous_id) for the registered accounts (or those of
    `account_ids`): two index lookups each, newest-first in ``(captured_at, id)`` order."""
    def nth(offset: int):
        candidate = snapshots.alias("candidate")
        return (select(candidate.c.id).where(candidate.c.account_id == accounts.c.account_id)
                .order_by(candidate.c.captured_at.desc(), candidate.c.id.desc()).limit(1).offset(offset)
                .correlate(accounts).scalar_subquery())

    query = select(accounts.c.account_id, nth(0).label("newest_id"), nth(1).label("previous_id"))
    if account_ids is not None:
        query = query.where(accounts.c.account_id.in_(account_ids))
    return query.subquery("pairs")


def _for_accounts(account_ids: list[str] | None):
    """Account filters to run one query each: [None] for all, else chunks of the ids."""
    return [None] if account_ids is None else list(_chunks(sorted(set(account_ids))))


def last(connection: Connection) -> dict[str, tuple[datetime, Decimal]]:
    pairs = _latest_pairs(None)
    query = (select(pairs.c.account_id, snapshots.c.captured_at, snapshots.c.balance)
             .join(snapshots, snapshots.c.id == pairs.c.newest_id))
    return {account: (at, balance) for account, at, balance in connection.execute(query)}


def latest(connection: Connection, account_ids: list[str] | None) -> list[Snapshot]:
    out = []
    for chunk in _for_accounts(account_ids):
        pairs = _latest_pairs(chunk)
        previous = snapshots.alias("previous")
        query = (
            select(pairs.c.account_id, snapshots.c.id, snapshots.c.balance, snapshots.c.currency,
                   snapshots.c.source, snapshots.c.captured_at, snapshots.c.created_at,
                   previous.c.balance, previous.c.currency)
            .join(snapshots, snapshots.c.id == pairs.c.newest_id)
            .outerjoin(previous, previous.c.id == pairs.c.previous_id)
        )
        for account, id_, balance, currency, source, captured_at, created_at, prev_balance, prev_currency \
                in connection.execute(query):
            amount, percent = change(balance, currency,
                                     None if prev_balance is None else (prev_balance, prev_currency))
            out.append(Snapshot(id_, account, balance, currency, source, captured_at, created_at, amount, percent))
    out.sort(key=lambda snapshot: snapshot.account_id)
    return out


def balances_since(connection: Connection, start: datetime) -> dict[str, list[tuple[datetime, Decimal]]]:
    """Per account, oldest first: its last snapshot before `start` (the balance it held when the
    window opened), then every snapshot captured at or after `start`. One statement."""
    columns = ("account_id", "captured_at", "balance", "id")
    inside = select(*(snapshots.c[name] for name in columns)).where(snapshots.c.captured_at >= start)
    candidate = snapshots.alias("candidate")
    before_id = (select(candidate.c.id)
                 .where(candidate.c.account_id == accounts.c.account_id, candidate.c.captured_at < start)
                 .order_by(candidate.c.captured_at.desc(), candidate.c.id.desc()).limit(1)
                 .correlate(accounts).scalar_subquery())
    opening = select(before_id.label("id")).select_from(accounts).subquery("opening")
    before = (select(*(snapshots.c[name] for name in columns)).join(opening, opening.c.id == snapshots.c.id))
    both = union_all(inside, before).subquery("both")
    rows = connection.execute(select(both.c.account_id, both.c.captured_at, both.c.balance)
                              .order_by(both.c.account_id, both.c.captured_at, both.c.id))
    out: dict[str, list[tuple[datetime, Decimal]]] = {}
    for account, captured_at, balance in rows:
        out.setdefault(account, []).append((captured_at, balance))
    return out


def assets_of(connection: Connection, snapshot_id: int) -> tuple[AssetRow, ...]:
    rows = connection.execute(
        select(snapshot_assets.c.asset, snapshot_assets.c.amount, snapshot_assets.c.price, snapshot_assets.c.value)
        .where(snapshot_assets.c.snapshot_id == snapshot_id).order_by(snapshot_assets.c.asset))
    return tuple(AssetRow(*row) for row in rows)


def cash(connection: Connection, snapshot_ids: list[int]) -> dict[int, Decimal]:
    """Snapshot id -> value of its asset row named like its currency (0 without one), for the
    snapshots that have asset rows at all; unknown ids are left out.

    Read from ``snapshots.cash``, written with each snapshot (`cash_of`; migration 0007 filled it
    for the older ones): one primary-key lookup per id, in plain SQL on the transaction's DBAPI
    cursor; PostgreSQL takes the ids as one array, SQLite in chunks of bound parameters."""
    postgres = connection.dialect.name == "postgresql"
    ids = sorted(set(snapshot_ids))
    if not ids:
        return {}
    select_sql = "SELECT id, cash{cast} FROM snapshots WHERE cash IS NOT NULL AND id {match}"
    if postgres:
        statements = [(select_sql.format(cast="::text", match="= ANY(%s)"), [ids])]
    else:
        statements = [(select_sql.format(cast="", match=f"IN ({', '.join('?' * len(chunk))})"), chunk)
                      for chunk in _chunks(ids)]
    out: dict[int, Decimal] = {}
    cursor = connection.connection.cursor()
    try:
        for sql, params in statements:
            cursor.execute(sql, params)
            out.update((snapshot_id, Decimal(value)) for snapshot_id, value in cursor.fetchall())
    finally:
        cursor.close()
    return out


def net_worth(connection: Connection, account_ids: Iterable[str]) -> dict[str, Decimal]:
    """Holdings of each account's newest snapshot summed per asset (no conversion). A snapshot
    without per-asset detail counts its balance under its currency."""
    totals: dict[str, Decimal] = {}
    for chunk in _for_accounts(list(account_ids)):
        newest = _latest_pairs(chunk)
        rows = connection.execute(
            select(snapshots.c.currency, snapshots.c.balance, snapshot_assets.c.asset, snapshot_assets.c.amount)
            .join(newest, newest.c.newest_id == snapshots.c.id)
            .outerjoin(snapshot_assets, snapshot_assets.c.snapshot_id == snapshots.c.id))
        for currency, balance, asset, amount in rows:
            key, value = (currency, balance) if asset is None else (asset, amount)
            totals[key] = MONEY.add(totals[key], value) if key in totals else value
    return dict(sorted(totals.items()))
