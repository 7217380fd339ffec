"""Store benchmark: fill SQLite (and PostgreSQL when ``BALANCES_TEST_POSTGRES_URL`` is set) with
`accounts` × `rows-days` days of 15-minute snapshots (200 × 90 = 1.73 M rows, one asset row each),
then time through `BalanceStore`:

  history  snapshot_history of one account over the whole range (goal: median ≤ 20 ms)
  latest   latest_snapshots for every account                    (goal: median ≤ 50 ms)
  write    add_snapshots of 1,000 accounts × 3 assets, one transaction (goal: median ≤ 100 ms)

and print median and p95 per backend. Prints figures, asserts nothing.

    python -m tests.bench.store [--rows-days 90] [--accounts 200] [--runs 30]

or ``from tests.bench.store import main; main([])``. The fill bypasses the store (bulk
``executemany`` on SQLite, ``COPY`` on PostgreSQL) but writes the store's own storage format into
the schema its migrations create; the PostgreSQL database is a throw-away one, dropped afterwards.
"""
from __future__ import annotations

import argparse
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

from sqlalchemy import create_engine, make_url, text

from bot.store import AssetRow, BalanceStore, SnapshotIn, default_database_url
from bot.store.types import sqlite_timestamp

STEP = timedelta(minutes=15)
END = datetime(2025, 6, 30, 23, 45, tzinfo=timezone.utc)
WRITE_ACCOUNTS = 1000
# Each filled snapshot's stored cash (snapshots.cash): its one asset row is USDT, not its currency
# (USD), so it holds no cash: "0" (as `bot.store.snapshots.cash_of` writes it).
CASH = "0"


def account_id(index: int) -> str:
    return f"user{index // 2:04d}:{'kraken' if index % 2 else 'okx'}"


def generate(accounts: int, days: int):
    """(snapshot rows, asset rows, latest rows) in time-major order, as plain Python values."""
    steps = days * 96
    start = END - STEP * (steps - 1)
    ids = [account_id(i) for i in range(accounts)]
    bases = [1000 + 37 * i for i in range(accounts)]
    snapshot_id = 0
    for step in range(steps):
        at = start + STEP * step
        source = "account_sync" if step % 7 == 0 else "scheduled_sync"
        for index, account in enumerate(ids):
            snapshot_id += 1
            balance = f"{bases[index] + (step * 7919 + index * 104729) % 100000 / 100:.2f}"
            yield snapshot_id, account, at, balance, source


def account_rows(accounts: int):
    return [(account_id(i), *account_id(i).split(":")) for i in range(accounts)]


def fill_sqlite(path: str, accounts: int, days: int) -> None:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA synchronous = OFF")
    db.execute("BEGIN")
    owner_broker = {account_id(i): account_id(i).split(":") for i in range(accounts)}
    snapshots, assets = [], []
    for id_, account, at, balance, source in generate(accounts, days):
        stamp = sqlite_timestamp(at)
        owner, broker = owner_broker[account]
        snapshots.append((id_, account, owner, broker, balance, "USD", source, stamp, stamp, CASH))
        assets.append((id_, "USDT", balance, "1", balance))
        if len(snapshots) >= 100_000:
            _sqlite_flush(db, snapshots, assets)
    _sqlite_flush(db, snapshots, assets)
    db.executemany("INSERT INTO accounts VALUES (?, ?, ?)", account_rows(accounts))
    db.execute("COMMIT")
    db.execute("ANALYZE")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()


def _sqlite_flush(db, snapshots: list, assets: list) -> None:
    db.executemany("INSERT INTO snapshots (id, account_id, owner, broker, balance, currency, source, captured_at, "
                   "created_at, cash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", snapshots)
    db.executemany("INSERT INTO snapshot_assets VALUES (?, ?, ?, ?, ?)", assets)
    snapshots.clear()
    assets.clear()


def fill_postgres(url: str, accounts: int, days: int) -> None:
    import psycopg

    conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo) as db:
        with db.cursor() as cursor:
            owner_broker = {account_id(i): account_id(i).split(":") for i in range(accounts)}
            with cursor.copy("COPY snapshots (id, account_id, owner, broker, balance, currency, source, "
                             "captured_at, created_at, cash) FROM STDIN") as copy:
                for id_, account, at, balance, source in generate(accounts, days):
                    owner, broker = owner_broker[account]
                    copy.write_row((id_, account, owner, broker, balance, "USD", source, at, at, CASH))
            with cursor.copy("COPY snapshot_assets (snapshot_id, asset, amount, price, value) FROM STDIN") as copy:
                for id_, _account, _at, balance, _source in generate(accounts, days):
                    copy.write_row((id_, "USDT", balance, "1", balance))
            cursor.executemany("INSERT INTO accounts VALUES (%s, %s, %s)", account_rows(accounts))
            cursor.execute("SELECT setval('snapshots_id_seq', (SELECT max(id) FROM snapshots))")
        db.commit()
    with psycopg.connect(conninfo, autocommit=True) as db:
        db.execute("VACUUM ANALYZE")


@contextmanager
def throwaway_postgres(admin_url: str):
    name = f"mb_bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def timed(call, runs: int, prepare=lambda i: None, warmup: int = 3) -> tuple[float, float]:
    """(median, p95) in milliseconds of `runs` calls of call(prepare(i)), after `warmup` untimed
    ones. Only the call is timed: its argument is built before, its result dropped after."""
    samples = []
    for i in range(-warmup, runs):
        argument = prepare(i)
        start = time.perf_counter()
        result = call(argument)
        elapsed = (time.perf_counter() - start) * 1000
        del result
        if i >= 0:
            samples.append(elapsed)
    samples.sort()
    return statistics.median(samples), samples[min(len(samples) - 1, round(0.95 * (len(samples) - 1)))]


def measure(name: str, url: str, fill, accounts: int, days: int, runs: int) -> dict:
    BalanceStore(url).close()  # create the schema through the migrations
    started = time.perf_counter()
    fill(accounts, days)
    fill_seconds = time.perf_counter() - started
    rows = accounts * days * 96
    store = BalanceStore(url)
    try:
        rng = random.Random(7)
        start = END - timedelta(days=days)
        assets = (AssetRow("BTC", Decimal("0.01234567"), Decimal("60000.1"), Decimal("740.74")),
                  AssetRow("ETH", Decimal("0.5"), Decimal("3000"), Decimal("1500")),
                  AssetRow("USDT", Decimal("100.5"), Decimal("1"), Decimal("100.5")))

        def history(account):
            result = store.snapshot_history(account, start, END)
            assert len(result) == days * 96, len(result)
            return result

        def latest(_):
            result = store.latest_snapshots()
            assert len(result) == accounts
            return result

        def refresh(i):  # one refresh of WRITE_ACCOUNTS accounts, 15 minutes after the previous one
            at = END + STEP * (i + 10)
            return [SnapshotIn(account_id(n), *account_id(n).split(":"), Decimal("1234.56") + n, "USD",
                               "scheduled_sync", at, assets) for n in range(WRITE_ACCOUNTS)]

        figures = {"history": timed(history, runs, lambda i: account_id(rng.randrange(accounts))),
                   "latest": timed(latest, runs)}
        figures["write"] = timed(store.add_snapshots, runs, refresh)
    finally:
        store.close()
    print(f"[{name}] filled {rows:,} snapshots (+{rows:,} asset rows) in {fill_seconds:.1f} s")
    for key, label, goal in (("history", f"snapshot_history, 1 account, {days} days ({days * 96} rows)", 20),
                             ("latest", f"latest_snapshots, all {accounts} accounts", 50),
                             ("write", f"add_snapshots, {WRITE_ACCOUNTS} accounts x 3 assets, 1 transaction", 100)):
        median, p95 = figures[key]
        print(f"[{name}] {label}: median {median:.1f} ms, p95 {p95:.1f} ms (goal median <= {goal} ms)")
    sys.stdout.flush()
    return figures


def calibration_ms() -> float:
    """Best of 5 runs of a plain Python loop (2 M additions), to compare machines."""
    best = float("inf")
    for _ in range(5):
        start, total = time.perf_counter(), 0
        for i in range(2_000_000):
            total += i
        best = min(best, time.perf_counter() - start)
    return best * 1000


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.store", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows-days", type=int, default=90, help="days of 15-minute snapshots (90)")
    parser.add_argument("--accounts", type=int, default=200, help="accounts filled (200)")
    parser.add_argument("--runs", type=int, default=30, help="timed calls per figure (30)")
    args = parser.parse_args(argv)
    print(f"[machine] calibration: a Python loop of 2 M additions takes {calibration_ms():.0f} ms "
          f"({sys.implementation.name} {sys.version.split()[0]})")
    results = {}
    with tempfile.TemporaryDirectory(prefix="mb-bench-") as directory:
        url = default_database_url(Path(directory))
        path = make_url(url).database
        results["sqlite"] = measure("sqlite", url, lambda a, d: fill_sqlite(path, a, d),
                                    args.accounts, args.rows_days, args.runs)
    admin_url = os.environ.get("BALANCES_TEST_POSTGRES_URL")
    if admin_url:
        with throwaway_postgres(admin_url) as url:
            results["postgresql"] = measure("postgresql", url, lambda a, d: fill_postgres(url, a, d),
                                            args.accounts, args.rows_days, args.runs)
    else:
        print("[postgresql] skipped: BALANCES_TEST_POSTGRES_URL is not set")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
