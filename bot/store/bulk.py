"""Bulk inserts for one refresh's snapshots: thousands of rows, a few statements.

The obvious ``connection.execute(table.insert(), rows)`` is slow here in two different ways:
psycopg sends an executemany as one INSERT per row (1,000 snapshots + 3,000 asset rows took
~200 ms on the benchmark machine), and SQLAlchemy's multi-row VALUES batching produces long
query strings that psycopg re-parses in Python every time. So, on the transaction's own DBAPI
connection:

- PostgreSQL: ``COPY table (columns) FROM STDIN``, rows formatted by psycopg's C code;
- SQLite: ``executemany`` of a plain INSERT (sqlite3 loops in C), values first converted to the
  storage format `bot.store.types` defines (decimal text, fixed-width UTC ISO text).

Values must already be checked (the `records` input types do that on construction). Callers run
these inside their write transaction.
"""
from __future__ import annotations

from typing import Sequence

from sqlalchemy import Connection, Table, func, select, text

from bot.store.types import Amount, UTCDateTime, sqlite_amount, sqlite_timestamp


def next_ids(connection: Connection, table: Table, count: int) -> list[int]:
    """`count` fresh ids for `table`'s integer primary key ``id``, ascending.

    PostgreSQL: taken from the column's sequence (safe with concurrent writers). SQLite:
    max(id) + 1, ... — what SQLite itself would assign — which is safe because the caller holds
    the database's write lock (BEGIN IMMEDIATE).
    """
    if connection.dialect.name == "postgresql":
        query = text(f"SELECT nextval(pg_get_serial_sequence('{table.name}', 'id')) "
                     "FROM generate_series(1, :count) ORDER BY 1")
        return list(connection.execute(query, {"count": count}).scalars())
    start = connection.execute(select(func.coalesce(func.max(table.c.id), 0))).scalar_one() + 1
    return list(range(start, start + count))


def insert(connection: Connection, table: Table, columns: Sequence[str], rows: list[tuple]) -> None:
    """Insert `rows`, tuples of values in `columns` order."""
    if not rows:
        return
    names = ", ".join(columns)
    if connection.dialect.name == "postgresql":
        cursor = connection.connection.cursor()  # this transaction's DBAPI connection
        try:
            with cursor.copy(f"COPY {table.name} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        finally:
            cursor.close()
        return
    values = [list(column) for column in zip(*rows)]
    for i, name in enumerate(columns):
        kind = table.c[name].type
        convert = sqlite_amount if isinstance(kind, Amount) else sqlite_timestamp if isinstance(kind, UTCDateTime) else None
        if convert is not None:
            values[i] = [None if value is None else convert(value) for value in values[i]]
    marks = ", ".join("?" for _ in columns)
    connection.exec_driver_sql(f"INSERT INTO {table.name} ({names}) VALUES ({marks})", list(zip(*values)))
