"""Engines for the two supported databases, set up for many threads and several processes.

SQLite (a file; in-memory databases are refused because each pooled connection would see its
own empty database): WAL journal (readers never block the writer and vice versa),
``synchronous=NORMAL`` (durable across process crashes; a power cut may lose the last commits,
never corrupt the file), a busy timeout of `BUSY_TIMEOUT_SECONDS` so that a writer waits for
another process's write instead of failing, foreign keys on, and a checkpoint every 10,000 WAL
pages (~40 MB) instead of 1,000: one refresh of 1,000 accounts dirties ~1,000 index pages, and
successive refreshes mostly the same ones, so checkpointing less often costs the same per
checkpoint but is paid by one commit in several instead of by every commit.

pysqlite's own transaction handling is switched off and SQLAlchemy emits ``BEGIN`` itself: read
transactions use a plain (deferred) ``BEGIN``, write transactions — connections from
`writer(engine)` — use ``BEGIN IMMEDIATE``, which takes SQLite's single write lock up front, so
concurrent writers queue instead of deadlocking on a read-to-write upgrade.

PostgreSQL through psycopg 3 (``postgresql://`` URLs are read as ``postgresql+psycopg://``);
sessions in UTC; READ COMMITTED, with the locks a write takes documented where it takes them.
Both get a connection pool; the engine is thread-safe, connections are not shared.

Opening a store checks the database first (`check_database`): an SQLite file gets SQLite's
``PRAGMA quick_check`` (every page of every table and index), stopped after
`QUICK_CHECK_SECONDS` on a file too large to check that fast, so a file with garbage in any page
is refused before anything writes to it. Every failure to open is a `StoreOpenError`, whose
message is one line naming the database (the file, or user, host and database name without
the password) and the reason.
"""
from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.exc import DBAPIError

log = logging.getLogger(__name__)

BUSY_TIMEOUT_SECONDS = 30
RESTORE = "; restore it from a backup or move it away"
QUICK_CHECK_SECONDS = 2.0  # ~1 GB of a cached file; a larger one is checked as far as that gets
_WRITE_OPTION = "multibalance_write"

# Key of the PostgreSQL transaction-level advisory lock (pg_advisory_xact_lock) taken by migrations.
MIGRATION_LOCK = 0x6D62_0001  # "mb" 1: schema migrations


def default_database_url(config_dir: Path) -> str:
    """The default database: ``multibalance.sqlite3`` in the configuration directory (absolute path)."""
    return f"sqlite:///{(Path(config_dir).resolve() / 'multibalance.sqlite3').as_posix()}"


def create_store_engine(url: str) -> Engine:
    """An engine for `url` (SQLite file or PostgreSQL), set up as described in the module docstring.

    Raises ValueError for other databases and for in-memory SQLite. Creates the SQLite file's
    directory if needed; otherwise connects lazily (nothing happens until the first query).
    """
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        database = parsed.database or ""
        if database in ("", ":memory:") or parsed.query.get("mode") == "memory":
            raise ValueError("in-memory SQLite is not supported by the balance store; give a file path")
        Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, connect_args={"timeout": BUSY_TIMEOUT_SECONDS, "check_same_thread": False})
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    if backend == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        engine = create_engine(parsed, pool_pre_ping=True)
        event.listen(engine, "connect", _postgresql_connect)
        return engine
    raise ValueError(f"unsupported database {backend!r}: use sqlite:///PATH or postgresql+psycopg://...")


def writer(engine: Engine) -> Engine:
    """The same engine (same pool) whose transactions are write transactions (SQLite: BEGIN IMMEDIATE)."""
    return engine.execution_options(**{_WRITE_OPTION: True})


def _sqlite_connect(dbapi_connection, connection_record) -> None:
    dbapi_connection.isolation_level = None  # we emit BEGIN ourselves (see _sqlite_begin)
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_SECONDS * 1000}")
        _enable_wal(cursor)
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA cache_size = -32768")  # 32 MiB per connection, allocated as used
        cursor.execute("PRAGMA wal_autocheckpoint = 10000")
    finally:
        cursor.close()


def _enable_wal(cursor) -> None:
    """Put the database file in WAL mode (a persistent setting: a no-op once done).

    Two connections switching a new file at the same moment make SQLite answer "database is
    locked" at once, without waiting through the busy timeout, so that case is retried here
    (with a short backoff, within the busy timeout).
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_SECONDS
    delay = 0.002
    while True:
        try:
            mode = cursor.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            break
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.1)
    if mode.lower() != "wal":
        raise RuntimeError(f"SQLite refused WAL mode (journal_mode is {mode!r}): is the file on a network drive?")


def _postgresql_connect(dbapi_connection, connection_record) -> None:
    # Sessions in UTC: psycopg then returns timestamptz values with tzinfo=timezone.utc as they
    # are, and nothing depends on the server's or the role's TimeZone setting.
    autocommit = dbapi_connection.autocommit
    dbapi_connection.autocommit = True
    try:
        dbapi_connection.execute("SET TIME ZONE 'UTC'")
    finally:
        dbapi_connection.autocommit = autocommit


def _sqlite_begin(connection) -> None:
    write = connection.get_execution_options().get(_WRITE_OPTION, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


class StoreOpenError(Exception):
    """The database cannot be opened: unreachable, unreadable, not a database, or damaged.
    ``str()`` is one line naming the database and the reason (never a password)."""


def database_name(url: str) -> str:
    """How errors name the database of ``url``: the SQLite file, else the URL without password."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return parsed.database or url
    return parsed.render_as_string(hide_password=True)


def open_error(url: str, exc: BaseException) -> StoreOpenError:
    """`StoreOpenError` for ``exc`` raised while opening ``url`` (the driver's first line as reason)."""
    cause = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    lines = str(cause).strip().splitlines()
    reason = lines[0].strip() if lines else type(cause).__name__
    if isinstance(cause, sqlite3.DatabaseError) and not isinstance(cause, sqlite3.OperationalError):
        if "not a database" in reason:
            reason = f"not an SQLite database, or damaged in its first page ({reason})"
        else:
            reason = f"the file is damaged ({reason}){RESTORE}"
    return StoreOpenError(f"{database_name(url)}: {reason}")


def check_database(engine: Engine, url: str) -> None:
    """Connect once; for SQLite also run ``PRAGMA quick_check`` within `QUICK_CHECK_SECONDS`.
    Raises `StoreOpenError` (see the module docstring)."""
    try:
        with engine.connect() as connection:
            if engine.dialect.name == "sqlite":
                _quick_check(connection.connection.driver_connection, url)
            else:
                connection.exec_driver_sql("SELECT 1")
    except (DBAPIError, sqlite3.Error) as exc:
        raise open_error(url, exc) from None


def _quick_check(raw: sqlite3.Connection, url: str) -> None:
    """``PRAGMA quick_check`` on the raw connection, interrupted at the deadline (then passed)."""
    deadline = time.monotonic() + QUICK_CHECK_SECONDS
    raw.set_progress_handler(lambda: time.monotonic() > deadline, 10_000)
    try:
        rows = raw.execute("PRAGMA quick_check(1)").fetchall()
    except sqlite3.OperationalError as exc:
        if "interrupt" not in str(exc):
            raise
        log.info("%s: integrity check stopped after %g s (a large file); opened as far as checked",
                 database_name(url), QUICK_CHECK_SECONDS)
        return
    finally:
        raw.set_progress_handler(None, 0)
    found = [line for row in rows for line in str(row[0]).splitlines() if line.strip() and not line.startswith("***")]
    if found != ["ok"]:
        raise StoreOpenError(f"{database_name(url)}: the file is damaged (integrity check: "
                             f"{found[0] if found else 'no answer'}){RESTORE}")
