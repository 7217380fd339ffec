"""History fed by the manager: snapshot policy and sources, daily closes, midnight, restarts, CLI."""
from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import threading
from decimal import Decimal as D
from pathlib import Path

import pytest

from bot.history.recorder import HistoryRecorder
from bot.multi_account_broker_manager import MultiAccountBrokerManager
from bot.store import BalanceStore, DailyRow
from tests.conftest import FAST_SETTINGS, broker_on, no_spacing

ROOT = Path(__file__).resolve().parents[1]




def kraken_config(config, kraken, users=("alice",), **settings):
    creds = {}
    config.settings(**FAST_SETTINGS, rate_limits=no_spacing("kraken"), **settings)
    for user in users:
        creds[user] = kraken.add_account({"USD": "100", "BTC": "0.01"})
        config.user(user, {"kraken": broker_on(kraken, creds[user])})
    return creds


def open_manager(config, managers) -> MultiAccountBrokerManager:
    manager = MultiAccountBrokerManager(config.load()).open()
    managers.append(manager)
    return manager


def sources(store, account_id):
    return [s.source for s in reversed(store.recent_snapshots(account_id, 100))]


def test_snapshots_follow_the_write_policy_and_label_their_source(config, managers, kraken):
    creds = kraken_config(config, kraken)
    manager = open_manager(config, managers)
    recorder, store = manager.history, manager.history.store
    manager.get_user_balance("alice")
    recorder.flush()
    manager.refresh(force=True)               # same value within 15 minutes: no new snapshot
    recorder.flush()
    assert sources(store, "alice:kraken") == ["initial_connection"]
    kraken.set_balance(creds["alice"]["api_key"], "USD", "150")
    manager.refresh(force=True)
    recorder.flush()
    newest = store.recent_snapshots("alice:kraken", 1)[0]
    assert sources(store, "alice:kraken") == ["initial_connection", "manual_sync"]
    assert newest.balance == D("650") and newest.change_amount == D("50")
    assert newest.change_percent == pytest.approx(50 / 600 * 100)
    assets = {a.asset: a for a in store.snapshot_assets(newest.id)}
    assert assets["BTC"].amount == D("0.01") and assets["BTC"].value == D("500")


def test_failed_read_writes_no_snapshot_and_today_carries_the_stale_value(config, managers, kraken):
    creds = kraken_config(config, kraken, users=("alice", "bob"))
    manager = open_manager(config, managers)
    manager.refresh()
    kraken.inject("invalid_key", api_key=creds["bob"]["api_key"], count=5)
    kraken.set_balance(creds["bob"]["api_key"], "USD", "999")
    manager.refresh(force=True)
    recorder = manager.history
    recorder.flush()
    assert len(recorder.store.recent_snapshots("bob:kraken", 100)) == 1
    today, = recorder.store.daily_closes("bob", recorder.today(), recorder.today())
    assert today.state == "provisional" and today.total == D("600")
    assert {r.account_status for r in today.rows} == {"stale"}


def test_midnight_close_is_idempotent(config, managers, kraken):
    kraken_config(config, kraken)
    manager = open_manager(config, managers)
    recorder = manager.history
    day = recorder.today()
    assert recorder.close_day(day) == 1
    first, = recorder.store.daily_closes("alice", day, day)
    assert first.state == "final" and first.total == D("600")
    assert recorder.close_day(day) == 0
    again, = recorder.store.daily_closes("alice", day, day)
    assert again.rows == first.rows and again.updated_at == first.updated_at


CRASHER = """
import datetime as dt, os, signal, sys
from bot.config import load_config
from bot.multi_account_broker_manager import MultiAccountBrokerManager
manager = MultiAccountBrokerManager(load_config(sys.argv[1])).open()
manager.refresh()
manager.history.flush()
yesterday = manager.history.today() - dt.timedelta(days=1)
manager.history.write_provisional(["alice"], day=yesterday)
print("provisional written", flush=True)
os.kill(os.getpid(), signal.SIGKILL)   # dies between provisional and final
"""


def test_crash_between_provisional_and_final_then_restart_after_midnight(config, managers, kraken):
    kraken_config(config, kraken)
    result = subprocess.run([sys.executable, "-c", CRASHER, str(config.root)], cwd=ROOT, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == -9 and "provisional written" in result.stdout, result.stderr
    manager = open_manager(config, managers)   # a restart: the missed day is finalised, carried forward
    store, today = manager.history.store, manager.history.today()
    yesterday, = store.daily_closes("alice", today - dt.timedelta(days=1), today - dt.timedelta(days=1))
    assert yesterday.state == "carried" and yesterday.total == D("600")
    assert store.open_days(before=today) == []


def test_days_follow_the_configured_timezone(config, managers, tmp_path):
    config.settings(timezone="Pacific/Kiritimati")   # UTC+14
    config.user("alice", {"paper": {"paper": True, "balances": {"USD": "5"}}})
    manager = MultiAccountBrokerManager(config.load(), history=False)
    managers.append(manager)
    manager.refresh()
    store = BalanceStore(f"sqlite:///{tmp_path / 'h.sqlite3'}")
    noon_utc = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.timezone.utc)
    recorder = HistoryRecorder(manager, store, manager.config.settings, now=lambda: noon_utc)
    assert recorder.today() == dt.date(2026, 1, 2)
    recorder.write_provisional(["alice"])
    assert [c.day for c in store.daily_closes("alice", dt.date(2026, 1, 1), dt.date(2026, 1, 3))] == [dt.date(2026, 1, 2)]
    store.close()


def test_scheduler_refreshes_with_scheduled_source_and_stops_cleanly(config, managers, kraken):
    kraken_config(config, kraken)
    manager = open_manager(config, managers)
    seen = threading.Event()
    manager.add_listener(lambda state, previous, source: source == "scheduled_sync" and seen.set())
    scheduler = manager.start_scheduler()
    assert manager.start_scheduler() is scheduler   # started once
    assert set(scheduler.jobs()) == {"refresh", "log_balances", "daily_close", "prune"}
    assert seen.wait(timeout=30)
    manager.close()
    assert not scheduler.running


def cli(*args):
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "show_user_balances.py"), *args],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)


def test_history_cli_table_json_and_export(config, kraken):
    kraken_config(config, kraken)
    root = str(config.root)
    assert cli("--config", root).returncode == 0           # one read: today's provisional close
    store = BalanceStore(f"sqlite:///{config.root / 'multibalance.sqlite3'}")
    yesterday = dt.datetime.now(dt.timezone.utc).date() - dt.timedelta(days=1)
    row = DailyRow("alice:kraken", "USD", D("42.5"), D("1"), D("42.5"), "USD", "ok")
    store.upsert_daily("alice", yesterday, [row])
    store.finalize_day("alice", yesterday)
    store.close()

    table = cli("--config", root, "--history", "alice", "--days", "2")
    assert table.returncode == 0, table.stderr
    assert "provisional (today, until midnight)" in table.stdout and "$600.00" in table.stdout
    assert f"{yesterday.isoformat()}" in table.stdout and "$42.50" in table.stdout

    # numbers as in the source documents, with their exact digits (parsed here as Decimal)
    text = cli("--config", root, "--history", "alice", "--json").stdout
    data = json.loads(text, parse_float=D)
    assert [d["day"] for d in data] == [yesterday.strftime("%Y%m%d"), dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d")]
    assert data[0]["totalBalance"] == {"amount": D("42.50"), "currency": "USD"} and '"amount": 42.50' in text
    assert data[0]["accountBalances"] == [{"account": "alice:kraken", "asset": "USD", "amount": D("42.5"),
                                           "value": D("42.50"), "status": "ok"}]
    assert data[0]["id"] == f"alice-{yesterday:%Y%m%d}"
    assert data[0]["portfolioBalances"][0]["portfolio"] == "alice:kraken"
    assert data[0]["portfolioBalances"][0]["value"] == D("42.50")
    assert data[1]["state"] == "provisional"

    export = cli("--config", root, "--export", "account-balance", "--user", "alice", "--date", yesterday.isoformat(), "--json")
    record, = json.loads(export.stdout, parse_float=D)
    assert record["object_category"] == "account-balance" and record["object_type"] == "day"
    assert record["object_class"] == "account-balance" and record["currency"] == "USD"
    assert record["balance_date"] == f"{yesterday.isoformat()}T00:00:00.000Z" and record["connection_id"] == "alice:kraken"
    assert record["data"] == [{"account_id": "alice:kraken:USD", "account_name": "KRAKEN USD",
                               "account_currency": "USD", "account_active": True, "account_balance": D("42.5")}]
    month = json.loads(cli("--config", root, "--export", "account-balance", "--user", "alice",
                           "--date", yesterday.isoformat(), "--type", "month", "--json").stdout)
    assert month[0]["object_type"] == "month"

    bad = cli("--config", root, "--export", "account-balance", "--user", "alice", "--date", "2026-13-40")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
