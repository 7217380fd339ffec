"""A damaged or unreachable database is refused at open with one line naming it and the reason.

Real SQLite files damaged the way disks and people damage them (garbage in middle pages, in the
first page, a truncated file) and a real PostgreSQL server (its variants skipped without
``BALANCES_TEST_POSTGRES_URL``).
"""
from __future__ import annotations

import logging
import os
import sqlite3
from datetime import datetime, timezone
from decimal import Decimal

import pytest
from sqlalchemy import make_url

import bot.store.engine as engine
from bot.store import BalanceStore, SnapshotIn, StoreOpenError, default_database_url
from tests.bad_configs import PAGE

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def filled_store_file(tmp_path, snapshots: int = 300):
    """An SQLite store with ``snapshots`` snapshots, closed; returns (url, path)."""
    url = default_database_url(tmp_path)
    with BalanceStore(url) as store:
        store.add_snapshots([SnapshotIn(f"alice:b{i % 7}", "alice", f"b{i % 7}", Decimal(i), "USD", "scheduled_sync",
                                        T0.replace(minute=i % 60, second=i // 60)) for i in range(snapshots)])
    return url, tmp_path / "multibalance.sqlite3"


def overwrite_pages(path, first: int, last: int) -> None:
    with open(path, "r+b") as handle:
        for page in range(first, last):
            handle.seek(page * PAGE)
            handle.write(b"\x5a" * PAGE)


def refused(url: str) -> str:
    with pytest.raises(StoreOpenError) as error:
        BalanceStore(url)
    message = str(error.value)
    assert "\n" not in message
    return message


def test_garbage_in_middle_pages_is_refused_before_anything_is_written(tmp_path):
    url, path = filled_store_file(tmp_path)
    pages = path.stat().st_size // PAGE
    assert pages > 6
    for first, last in ((2, 3), (pages // 2, pages // 2 + 2), (pages - 1, pages)):
        overwrite_pages(path, first, last)
        before = path.read_bytes()
        message = refused(url)
        assert message.startswith(f"{path}: the file is damaged ("), message
        assert "restore it from a backup" in message
        assert path.read_bytes() == before  # opening wrote nothing into the damaged file


def test_garbage_in_the_first_page_is_still_refused(tmp_path):
    url, path = filled_store_file(tmp_path, snapshots=10)
    with open(path, "r+b") as handle:
        handle.write(os.urandom(100))
    assert refused(url) == f"{path}: not an SQLite database, or damaged in its first page (file is not a database)"


def test_a_truncated_file_is_refused(tmp_path):
    url, path = filled_store_file(tmp_path)
    with open(path, "r+b") as handle:
        handle.truncate(path.stat().st_size // 2)
    assert refused(url).startswith(f"{path}: the file is damaged")


def test_an_empty_file_is_a_new_database(tmp_path):
    url = default_database_url(tmp_path)
    (tmp_path / "multibalance.sqlite3").write_bytes(b"")
    with BalanceStore(url) as store:
        assert store.latest_snapshots() == []


def test_a_healthy_file_keeps_opening_and_its_data(tmp_path):
    url, _ = filled_store_file(tmp_path)
    for _ in range(2):
        with BalanceStore(url) as store:
            assert len(store.latest_snapshots()) == 7


def test_the_check_of_a_file_too_large_to_check_in_time_stops_and_opens(tmp_path, monkeypatch, caplog):
    url, path = filled_store_file(tmp_path, snapshots=10)
    with sqlite3.connect(path) as raw:  # far more rows than the check gets through in no time at all
        raw.execute("CREATE TABLE ballast (id INTEGER PRIMARY KEY, payload TEXT NOT NULL)")
        raw.executemany("INSERT INTO ballast (payload) VALUES (?)", ((str(i) * 8,) for i in range(50_000)))
    monkeypatch.setattr(engine, "QUICK_CHECK_SECONDS", 0.0)
    caplog.set_level(logging.INFO, logger="bot.store.engine")
    with BalanceStore(url) as store:
        assert len(store.latest_snapshots()) == 7
    assert any("integrity check stopped" in r.getMessage() for r in caplog.records)


def test_an_unreachable_postgresql_is_one_line_without_password():
    with pytest.raises(StoreOpenError) as error:
        BalanceStore("postgresql+psycopg://mb:hunter2hunter2@127.0.0.1:1/mb")
    message = str(error.value)
    assert message.startswith("postgresql+psycopg://mb:***@127.0.0.1:1/mb: ") and "\n" not in message
    assert "hunter2" not in message and len(message) < 300


def test_a_missing_postgresql_database_names_it(postgres_server_url):
    url = make_url(postgres_server_url).set(database="mb_no_such_database").render_as_string(hide_password=False)
    message = refused(url)
    assert "mb_no_such_database" in message and "does not exist" in message


def test_both_databases_pass_the_open_check(fresh_database_url):
    with BalanceStore(fresh_database_url) as store:
        engine.check_database(store._engine, fresh_database_url)  # again, on the migrated database
        assert store.latest_snapshots() == []
