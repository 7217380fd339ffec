"""Concurrent writers on one database, per backend: threads sharing a store, and separate
processes each with their own (as the bot and the web server would). Workers start together on
a barrier (threads) or on a line written to their stdin (processes); nothing waits by sleeping.
"""
from __future__ import annotations

import json
import subprocess
import sys
import threading
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

from bot.store import BalanceStore, DailyRow
from bot.store.migrate import current_revision, head_revision
from tests.test_store import MIN, T0, snap

ROOT = Path(__file__).resolve().parents[1]
DAY = date(2025, 3, 1)
KEYS = [(f"shared:acct{k}", asset) for k in range(5) for asset in ("BTC", "ETH")]

WORKER = r'''
import json, sys
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from bot.store import BalanceStore, DailyRow, SnapshotIn

url, mode, worker, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
keys = [(f"shared:acct{k}", asset) for k in range(5) for asset in ("BTC", "ETH")]
day, t0 = date(2025, 3, 1), datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc)
store = None if mode == "open" else BalanceStore(url)
print("READY", flush=True)
sys.stdin.readline()
result = {}
if mode == "open":
    store = BalanceStore(url)
elif mode == "upsert":
    for i in range(rounds):
        tag = Decimal(f"{worker}.{i:04d}")
        rows = [DailyRow(account, asset, tag, None, tag, "USD", "ok") for account, asset in keys]
        assert store.upsert_daily("shared", day, rows)
        own = [DailyRow(f"w{worker}:x", "BTC", tag, None, None, "USD", "ok")]
        assert store.upsert_daily(f"w{worker}", day + timedelta(days=i % 3), own)
    print("PHASE", flush=True)  # everyone's upserts are done before anyone finalises
    sys.stdin.readline()
    result["finalized"] = store.finalize_day("shared", day)
elif mode == "snapshots":
    for i in range(rounds):
        at = t0 + timedelta(minutes=i, microseconds=worker)
        result.setdefault("ids", []).extend(store.add_snapshots(
            [SnapshotIn(account, "shared", account.split(":")[1], Decimal(f"{worker}.{i:04d}"), "USD",
                        "scheduled_sync", at) for account, _ in keys[::2]]))
store.close()
print(json.dumps(result), flush=True)
'''


def release(processes, expected: str) -> None:
    """Wait until every process has printed `expected`, then let them all go on at once."""
    for process in processes:
        line = process.stdout.readline().strip()
        assert line == expected, (line, process.stderr.read() if process.poll() is not None else "")
    for process in processes:
        process.stdin.write("go\n")
        process.stdin.flush()


def run_together(url: str, mode: str, rounds: int, workers: int = 2) -> list[dict]:
    """Start `workers` processes, let each open its store, release them at once (and again
    between phases), collect their results."""
    processes = [subprocess.Popen([sys.executable, "-c", WORKER, url, mode, str(n), str(rounds)], cwd=ROOT,
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for n in range(1, workers + 1)]
    try:
        release(processes, "READY")
        if mode == "upsert":
            release(processes, "PHASE")
        results = []
        for process in processes:
            out, err = process.communicate(timeout=300)
            assert process.returncode == 0, err
            results.append(json.loads(out.strip().splitlines()[-1]))
        return results
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()


def rows_for(tag: Decimal) -> list[DailyRow]:
    return [DailyRow(account, asset, tag, None, tag, "USD", "ok") for account, asset in KEYS]


def assert_one_whole_set(store, tags: set[Decimal]) -> None:
    [close] = store.daily_closes("shared", DAY, DAY)
    assert len(close.rows) == len(KEYS)                                   # no duplicates, none lost
    assert sorted((r.account_id, r.asset) for r in close.rows) == sorted(KEYS)
    assert len({r.amount for r in close.rows}) == 1                       # one writer's set, not a mix
    assert close.rows[0].amount in tags


def test_two_processes_open_a_fresh_database_at_once(fresh_database_url):
    run_together(fresh_database_url, "open", 0)
    with BalanceStore(fresh_database_url) as opened:
        assert current_revision(opened._engine) == head_revision()


def test_two_processes_replacing_the_same_day(database_url):
    rounds = 40
    results = run_together(database_url, "upsert", rounds)
    with BalanceStore(database_url) as opened:
        assert_one_whole_set(opened, {Decimal(f"{w}.{rounds - 1:04d}") for w in (1, 2)})  # someone's last write
        [close] = opened.daily_closes("shared", DAY, DAY)
        assert close.state == "final"
        assert sorted(r["finalized"] for r in results) == [False, True]   # exactly one finalised it
        for worker in (1, 2):                                             # each one's own days: all there
            closes = opened.daily_closes(f"w{worker}", DAY, DAY + timedelta(days=2))
            assert [c.day for c in closes] == [DAY + timedelta(days=d) for d in range(3)]
            assert closes[(rounds - 1) % 3].rows[0].amount == Decimal(f"{worker}.{rounds - 1:04d}")


def test_two_processes_writing_snapshots(database_url):
    rounds = 25
    results = run_together(database_url, "snapshots", rounds)
    ids = results[0]["ids"] + results[1]["ids"]
    assert len(ids) == len(set(ids)) == 2 * rounds * 5
    with BalanceStore(database_url) as opened:
        latest = opened.latest_snapshots()
        assert len(latest) == 5
        for snapshot in latest:  # worker 2's last one is the newest (later by 1 µs)
            assert snapshot.balance == Decimal(f"2.{rounds - 1:04d}")
            assert snapshot.change_amount == Decimal(f"2.{rounds - 1:04d}") - Decimal(f"1.{rounds - 1:04d}")
            history = opened.snapshot_history(snapshot.account_id, T0, T0 + timedelta(days=1))
            assert len(history) == 2 * rounds


def test_threads_sharing_one_store(store):
    threads, rounds = 8, 15
    start, upserted = threading.Barrier(threads), threading.Barrier(threads)
    errors: list[BaseException] = []
    finalized: list[bool] = []

    def work(n: int) -> None:
        try:
            start.wait(timeout=60)
            for i in range(rounds):
                assert store.upsert_daily("shared", DAY, rows_for(Decimal(f"{n}.{i:04d}")))
                store.add_snapshots([snap(f"t{n}:x", str(i), T0 + i * MIN), snap("shared:x", str(i), T0 + i * MIN)])
                store.latest_snapshots()
                store.snapshot_history("shared:x", T0, T0 + rounds * MIN)
            upserted.wait(timeout=300)  # everyone's upserts are done before anyone finalises
            finalized.append(store.finalize_day("shared", DAY))
        except BaseException as error:  # reported below
            errors.append(error)
            start.abort()
            upserted.abort()

    workers = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=300)
    assert not errors, errors
    assert_one_whole_set(store, {Decimal(f"{n}.{rounds - 1:04d}") for n in range(threads)})
    assert sorted(finalized) == [False] * (threads - 1) + [True]
    assert len(store.snapshot_history("shared:x", T0, T0 + rounds * MIN)) == threads * rounds
    assert len(store.latest_snapshots()) == threads + 1
