"""Database fixtures for the store suites: every test runs on SQLite and on PostgreSQL.

The PostgreSQL variants use a throw-away database created from ``BALANCES_TEST_POSTGRES_URL``
(dropped at the end of the session); where that variable is unset they are skipped, never passed.
Registered for every test module by ``tests/conftest.py``.
"""
from __future__ import annotations

import os
import uuid
from contextlib import contextmanager

import pytest
from sqlalchemy import create_engine, make_url, text

from bot.store import BalanceStore, default_database_url
from bot.store.engine import create_store_engine
from bot.store.schema import metadata

POSTGRES_ENV = "BALANCES_TEST_POSTGRES_URL"


@pytest.fixture(scope="session")
def postgres_server_url() -> str:
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        pytest.skip(f"{POSTGRES_ENV} is not set: PostgreSQL variant not run")
    return url


@contextmanager
def throwaway_database(server_url: str):
    """A new, empty PostgreSQL database on the server of `server_url`; dropped on exit."""
    name = f"mb_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def postgres_url(postgres_server_url):
    with throwaway_database(postgres_server_url) as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path) -> str:
    """A migrated database with empty tables: a new SQLite file, or the session's PostgreSQL one."""
    if request.param == "sqlite":
        return default_database_url(tmp_path / "config")
    url = request.getfixturevalue("postgres_url")
    BalanceStore(url).close()
    engine = create_store_engine(url)
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {', '.join(t.name for t in metadata.sorted_tables)} RESTART IDENTITY CASCADE"))
    engine.dispose()
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_database_url(request, tmp_path):
    """A database nobody has opened yet (no schema at all)."""
    if request.param == "sqlite":
        yield default_database_url(tmp_path / "fresh")
        return
    with throwaway_database(request.getfixturevalue("postgres_server_url")) as url:
        yield url


@pytest.fixture
def store(database_url):
    opened = BalanceStore(database_url)
    yield opened
    opened.close()
