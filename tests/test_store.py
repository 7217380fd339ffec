"""BalanceStore against a real SQLite file and a real PostgreSQL.

Every test taking `store` (or `database_url` / `fresh_database_url`) runs once per backend. The
PostgreSQL variant needs ``BALANCES_TEST_POSTGRES_URL`` (e.g.
``postgresql+psycopg://postgres@127.0.0.1:5432/test``): a throw-away database is created for the
session and dropped afterwards, and each test starts from empty tables. Without the variable the
PostgreSQL variants are reported as skipped. Concurrency tests are in test_store_concurrency.py.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from bot.store import (
    SOURCES, AlertIn, AssetRow, BalanceStore, DailyClose, DailyRow, Snapshot, SnapshotIn, TradeIn,
    default_database_url,
)
from bot.store import bulk
from bot.store.migrate import current_revision, head_revision
from bot.store.records import SNAPSHOT_SLOTS
from bot.store.schema import metadata

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc)
MIN = timedelta(minutes=15)
D = Decimal


# --- helpers ------------------------------------------------------------------------------------

def snap(account="alice:kraken", balance="100", at=T0, source="scheduled_sync", currency="USD", assets=()):
    owner, broker = account.split(":")
    return SnapshotIn(account, owner, broker, D(balance), currency, source, at, tuple(assets))


def drow(account="alice:kraken", asset="BTC", amount="1", price="100", value="100", status="ok", base="USD"):
    return DailyRow(account, asset, D(amount), None if price is None else D(price),
                    None if value is None else D(value), base, status)


def balances(snapshots):
    return [s.balance for s in snapshots]


# --- opening and migrations ---------------------------------------------------------------------

def test_migrations_run_twice_and_keep_data(database_url):
    first = BalanceStore(database_url)
    first.add_snapshots([snap()])
    first.close()
    second = BalanceStore(database_url)  # migrations again: nothing to do, nothing lost
    try:
        assert [s.balance for s in second.latest_snapshots()] == [D("100")]
        assert current_revision(second._engine) == head_revision()
    finally:
        second.close()


def test_fresh_database_is_migrated_to_head(fresh_database_url):
    with BalanceStore(fresh_database_url) as opened:
        assert current_revision(opened._engine) == head_revision()


def test_migrated_schema_matches_declared_tables(store):
    with store._engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection, opts={"compare_type": True}), metadata)
    assert differences == []


def test_default_database_url_is_an_absolute_sqlite_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    url = default_database_url(Path("config"))
    assert url == f"sqlite:///{tmp_path.resolve()}/config/multibalance.sqlite3"
    with BalanceStore(url) as opened:
        opened.add_snapshots([snap()])
    assert (tmp_path / "config" / "multibalance.sqlite3").exists()


def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(tmp_path):
    with BalanceStore(default_database_url(tmp_path)) as opened, opened._engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:", "mysql+pymysql://u@h/db"])
def test_unsupported_databases_are_refused(url):
    with pytest.raises(ValueError):
        BalanceStore(url)


# --- exact values -------------------------------------------------------------------------------

def test_decimals_round_trip_exactly(store):
    huge = D("123456789012345678901234567890.123456789012345678")
    total = D("0.1") + D("0.2")  # exactly 0.3, where 0.1 + 0.2 in floats is not
    [first, second] = store.add_snapshots([
        snap(balance="0.1", at=T0),
        snap(balance=str(total), at=T0 + MIN, assets=[AssetRow("BTC", huge, D("0.30"), D("1E-30"))]),
    ])
    [latest] = store.latest_snapshots()
    assert str(latest.balance) == "0.3" and latest.change_amount == D("0.2")
    assert store.snapshot_assets(second) == (AssetRow("BTC", huge, D("0.30"), D("1E-30")),)
    assert str(store.snapshot_assets(second)[0].price) == "0.30"  # scale kept
    bigger = D("123456789012345678901234567891.123456789012345678")  # huge + 1 (48 digits: beyond 28)
    store.add_snapshots([snap(balance=str(huge), at=T0 + 2 * MIN), snap(balance=str(bigger), at=T0 + 3 * MIN)])
    [latest] = store.latest_snapshots()
    assert str(latest.balance) == str(bigger) and latest.change_amount == D(1)
    history = store.snapshot_history("alice:kraken", T0, T0 + 3 * MIN)
    assert history[-1].change_amount == D(1)
    assert history[-2].change_amount == D("123456789012345678901234567889.823456789012345678")


def test_floats_and_non_finite_amounts_are_refused():
    with pytest.raises(ValueError, match="Decimal"):
        AssetRow("BTC", 0.1, None, None)
    with pytest.raises(ValueError, match="finite"):
        snap(balance="NaN")
    with pytest.raises(ValueError, match="Decimal"):
        SnapshotIn("a:b", "a", "b", 1.5, "USD", "account_sync", T0)


def test_datetimes_come_back_aware_in_utc(store):
    paris = timezone(timedelta(hours=2))
    store.add_snapshots([snap(at=datetime(2025, 3, 1, 14, 0, 0, 123456, tzinfo=paris))])
    [latest] = store.latest_snapshots()
    assert latest.captured_at == datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=timezone.utc)
    assert latest.captured_at.tzinfo is timezone.utc and latest.created_at.tzinfo is timezone.utc
    [(at, _)] = store.last_snapshots().values()
    assert at.tzinfo is timezone.utc
    [history] = store.snapshot_history("alice:kraken", T0 - MIN, T0 + MIN)
    assert history.captured_at.tzinfo is timezone.utc and history.captured_at == latest.captured_at


def test_naive_datetimes_are_refused(store):
    with pytest.raises(ValueError, match="timezone-aware"):
        snap(at=datetime(2025, 3, 1, 12, 0))
    with pytest.raises(ValueError, match="timezone-aware"):
        store.snapshot_history("alice:kraken", datetime(2025, 3, 1), T0)
    with pytest.raises(ValueError, match="timezone-aware"):
        store.prune_snapshots(datetime(2025, 3, 1))


# --- snapshots ----------------------------------------------------------------------------------

def test_ids_are_returned_in_order_and_snapshots_equal_plain_constructions(store):
    ids = store.add_snapshots([snap(balance=str(b), at=T0 + i * MIN) for i, b in enumerate((100, 110, 99))])
    assert ids == sorted(ids) and len(set(ids)) == 3
    history = store.snapshot_history("alice:kraken", T0, T0 + 2 * MIN)
    assert [s.id for s in history] == ids
    # Histories build Snapshot values slot by slot; they must equal ordinary constructions.
    expected = Snapshot(ids[1], "alice:kraken", D(110), "USD", "scheduled_sync", T0 + MIN, history[1].created_at,
                        D(10), pytest.approx(10.0))
    assert history[1] == expected and hash(history[1]) == hash(Snapshot(*[getattr(history[1], n) for n in Snapshot.__slots__]))
    assert len(SNAPSHOT_SLOTS) == len(Snapshot.__slots__)


def test_change_figures(store):
    store.add_snapshots([snap(balance="0", at=T0), snap(balance="50", at=T0 + MIN), snap(balance="75", at=T0 + 2 * MIN),
                         snap(balance="75", at=T0 + 3 * MIN), snap(balance="60", at=T0 + 4 * MIN, currency="EUR")])
    history = store.snapshot_history("alice:kraken", T0, T0 + 4 * MIN)
    figures = [(s.change_amount, s.change_percent) for s in history]
    assert figures[0] == (None, None)                 # first snapshot: no previous
    assert figures[1] == (D(50), None)                # previous balance 0: amount, no percent
    assert figures[2] == (D(25), pytest.approx(50.0))
    assert figures[3] == (D(0), 0.0)
    assert figures[4] == (None, None)                 # currency changed: not comparable
    [latest] = store.latest_snapshots()
    assert (latest.change_amount, latest.change_percent) == (None, None)


def test_latest_snapshots_per_account(store):
    store.add_snapshots([snap("alice:kraken", "100", T0), snap("bob:okx", "10", T0)])
    store.add_snapshots([snap("alice:kraken", "120", T0 + MIN), snap("carol:okx", "5", T0 + MIN)])
    store.add_snapshots([snap("alice:kraken", "1", T0 - MIN)])  # late arrival of an older reading
    latest = store.latest_snapshots()
    assert [(s.account_id, s.balance, s.change_amount) for s in latest] == [
        ("alice:kraken", D(120), D(20)), ("bob:okx", D(10), None), ("carol:okx", D(5), None)]
    assert latest[0].change_percent == pytest.approx(20.0)
    assert [s.account_id for s in store.latest_snapshots(["carol:okx", "nobody:x", "alice:kraken"])] == [
        "alice:kraken", "carol:okx"]
    assert store.latest_snapshots([]) == []
    assert store.last_snapshots() == {"alice:kraken": (T0 + MIN, D(120)), "bob:okx": (T0, D(10)),
                                      "carol:okx": (T0 + MIN, D(5))}
    with pytest.raises(ValueError, match="iterable of ids"):
        store.latest_snapshots("alice:kraken")


def test_equal_capture_times_are_ordered_by_id(store):
    store.add_snapshots([snap(balance="1", at=T0), snap(balance="2", at=T0)])
    assert balances(store.snapshot_history("alice:kraken", T0, T0)) == [D(1), D(2)]
    [latest] = store.latest_snapshots()
    assert latest.balance == D(2) and latest.change_amount == D(1)


def test_history_range_is_inclusive_and_changes_reach_before_it(store):
    store.add_snapshots([snap(balance=str(100 + i), at=T0 + i * MIN) for i in range(6)])
    store.add_snapshots([snap("bob:okx", "7", T0 + MIN)])
    history = store.snapshot_history("alice:kraken", T0 + MIN, T0 + 4 * MIN)
    assert balances(history) == [D(101), D(102), D(103), D(104)]      # both ends included
    assert history[0].change_amount == D(1)                             # versus T0, outside the range
    assert store.snapshot_history("alice:kraken", T0 + MIN + timedelta(microseconds=1), T0 + 2 * MIN)[0].balance == D(102)
    assert store.snapshot_history("alice:kraken", T0 + 10 * MIN, T0 + 20 * MIN) == []
    assert store.snapshot_history("nobody:x", T0, T0 + 20 * MIN) == []
    with pytest.raises(ValueError, match="after end"):
        store.snapshot_history("alice:kraken", T0 + MIN, T0)


def test_ranges_compare_instants_not_wall_clocks(store):
    tokyo, new_york = timezone(timedelta(hours=9)), timezone(timedelta(hours=-5))
    store.add_snapshots([snap(balance="3", at=T0 + timedelta(microseconds=1)),           # inserted out of order
                         snap(balance="1", at=(T0 - MIN).astimezone(tokyo)),
                         snap(balance="2", at=T0.astimezone(new_york))])
    history = store.snapshot_history("alice:kraken", T0.astimezone(tokyo), (T0 + MIN).astimezone(new_york))
    assert balances(history) == [D(2), D(3)] and history[0].change_amount == D(1)
    assert balances(store.snapshot_history("alice:kraken", T0 - MIN, T0)) == [D(1), D(2)]


def test_source_filter(store):
    sources = ["initial_connection", "scheduled_sync", "manual_sync", "scheduled_sync", "account_sync", "scheduled_sync"]
    store.add_snapshots([snap(balance=str(10 * (i + 1)), at=T0 + i * MIN, source=s) for i, s in enumerate(sources)])
    scheduled = store.snapshot_history("alice:kraken", T0 + 2 * MIN, T0 + 5 * MIN, source="scheduled_sync")
    assert [(s.balance, s.change_amount) for s in scheduled] == [(D(40), D(20)), (D(60), D(20))]  # vs scheduled only
    everything = store.snapshot_history("alice:kraken", T0 + 2 * MIN, T0 + 5 * MIN)
    assert [s.change_amount for s in everything] == [D(10)] * 4
    recent = store.recent_snapshots("alice:kraken", 2, source="scheduled_sync")
    assert [(s.balance, s.change_amount) for s in recent] == [(D(60), D(20)), (D(40), D(20))]
    assert store.recent_snapshots("alice:kraken", 5, source="initial_connection")[0].change_amount is None
    for bad in ("hourly", "", "SCHEDULED_SYNC"):
        with pytest.raises(ValueError, match="source must be one of"):
            store.snapshot_history("alice:kraken", T0, T0 + MIN, source=bad)
        with pytest.raises(ValueError, match="source must be one of"):
            snap(source=bad)
    assert SOURCES == ("initial_connection", "account_sync", "manual_sync", "scheduled_sync")


def test_recent_snapshots_newest_first_within_limit_bounds(store):
    store.add_snapshots([snap(balance=str(i), at=T0 + i * MIN) for i in range(1, 121)])
    recent = store.recent_snapshots("alice:kraken", 3)
    assert balances(recent) == [D(120), D(119), D(118)]
    assert [s.change_amount for s in recent] == [D(1)] * 3             # the last one versus #117
    assert len(store.recent_snapshots("alice:kraken", 100)) == 100
    assert balances(store.recent_snapshots("alice:kraken", 1)) == [D(120)]
    assert store.recent_snapshots("nobody:x", 10) == []
    for bad in (0, 101, -1, 1.5, True, "10", None):
        with pytest.raises(ValueError, match="limit must be an integer from 1 to 100"):
            store.recent_snapshots("alice:kraken", bad)


def test_all_of_a_short_history_in_recent(store):
    store.add_snapshots([snap(balance="5", at=T0), snap(balance="6", at=T0 + MIN)])
    recent = store.recent_snapshots("alice:kraken", 10)
    assert [(s.balance, s.change_amount) for s in recent] == [(D(6), D(1)), (D(5), None)]


def test_assets_and_net_worth_by_currency(store):
    btc, usdt = AssetRow("BTC", D("0.5"), D("60000"), D("30000")), AssetRow("USDT", D("100.25"), D(1), D("100.25"))
    store.add_snapshots([snap("alice:kraken", "30100.25", T0, assets=[usdt, btc]),
                         snap("bob:okx", "999", T0, assets=[AssetRow("BTC", D("0.25"), None, None)])])
    newer = store.add_snapshots([snap("bob:okx", "1", T0 + MIN, assets=[AssetRow("BTC", D("0.1"), None, None)]),
                                 snap("carol:okx", "70", T0 + MIN, currency="EUR")])  # no asset detail
    assert store.snapshot_assets(newer[1]) == ()
    [alice] = store.latest_snapshots(["alice:kraken"])
    assert store.snapshot_assets(alice.id) == (btc, usdt)                        # by asset name
    assert store.net_worth_by_currency(["alice:kraken", "bob:okx", "carol:okx", "nobody:x"]) == {
        "BTC": D("0.6"), "EUR": D(70), "USDT": D("100.25")}                       # bob's newest only
    assert store.net_worth_by_currency([]) == {}
    assert store.snapshot_assets(999_999) == ()


def test_add_snapshots_is_all_or_nothing(store, monkeypatch):
    real_insert = bulk.insert

    def failing_insert(connection, table, columns, rows):
        if table.name == "snapshot_assets":
            raise RuntimeError("disk full")
        return real_insert(connection, table, columns, rows)

    monkeypatch.setattr(bulk, "insert", failing_insert)
    with pytest.raises(RuntimeError):
        store.add_snapshots([snap(at=T0), snap("bob:okx", at=T0, assets=[AssetRow("BTC", D(1), None, None)])])
    monkeypatch.setattr(bulk, "insert", real_insert)
    assert store.latest_snapshots() == [] and store.last_snapshots() == {}
    assert store.add_snapshots([]) == []
    with pytest.raises(ValueError, match="SnapshotIn"):
        store.add_snapshots([{"account_id": "alice:kraken"}])


def test_one_refresh_of_a_thousand_accounts_in_one_call(store):
    assets = (AssetRow("BTC", D("0.01"), D("60000"), D("600")), AssetRow("USDT", D(5), D(1), D(5)))
    ids = store.add_snapshots([snap(f"user{i}:kraken", str(i), T0, assets=assets) for i in range(1000)])
    assert len(set(ids)) == 1000
    latest = store.latest_snapshots()
    assert len(latest) == 1000 and {s.id for s in latest} == set(ids)
    assert store.net_worth_by_currency([s.account_id for s in latest]) == {"BTC": D("10.00"), "USDT": D(5000)}


def test_pruning_keeps_daily_closes_and_each_accounts_latest_two(store):
    old, cutoff = T0 - timedelta(days=100), T0 - timedelta(days=90)
    store.add_snapshots([snap("alice:kraken", str(i), old + i * MIN, assets=[AssetRow("BTC", D(i), None, None)])
                         for i in range(10)])
    store.add_snapshots([snap("alice:kraken", "50", T0), snap("bob:okx", "1", old), snap("bob:okx", "2", old + MIN),
                         snap("bob:okx", "3", old + 2 * MIN)])
    store.upsert_daily("alice", date(2024, 11, 1), [drow()])
    store.finalize_day("alice", date(2024, 11, 1))
    assert store.prune_snapshots(cutoff) == 9 + 1  # alice keeps old #9 (previous of T0) and T0; bob keeps 2 and 3
    assert balances(store.snapshot_history("alice:kraken", old, T0)) == [D(9), D(50)]
    assert balances(store.snapshot_history("bob:okx", old, T0)) == [D(2), D(3)]
    [alice, bob] = store.latest_snapshots()
    assert (alice.balance, alice.change_amount, bob.balance, bob.change_amount) == (D(50), D(41), D(3), D(1))
    assert store.daily_closes("alice", date(2024, 11, 1), date(2024, 11, 1))[0].rows == (drow(),)
    assert store.prune_snapshots(cutoff) == 0
    pruned_assets = store.snapshot_assets(store.snapshot_history("alice:kraken", old, T0)[0].id)
    assert pruned_assets == (AssetRow("BTC", D(9), None, None),)


# --- daily closes -------------------------------------------------------------------------------

DAY = date(2025, 3, 1)


def test_upsert_daily_replaces_the_days_rows(store):
    assert store.upsert_daily("alice", DAY, [drow("alice:kraken", "BTC"), drow("alice:kraken", "ETH", value="50"),
                                             drow("alice:okx", "USDT", value=None, price=None)])
    assert store.upsert_daily("alice", DAY, [drow("alice:okx", "USDT", "7", "1", "7"),
                                             drow("alice:kraken", "BTC", "2", "110", "220", status="stale")])
    [close] = store.daily_closes("alice", DAY, DAY)
    assert isinstance(close, DailyClose) and close.state == "provisional" and close.day == DAY
    assert close.rows == (drow("alice:kraken", "BTC", "2", "110", "220", status="stale"), drow("alice:okx", "USDT", "7", "1", "7"))
    assert close.total == D(227) and close.updated_at.tzinfo is timezone.utc
    assert store.upsert_daily("alice", DAY, [drow(value=None)])
    assert store.daily_closes("alice", DAY, DAY)[0].total is None        # no known value: unknown, not 0
    assert store.upsert_daily("alice", DAY, [])
    assert store.daily_closes("alice", DAY, DAY)[0].rows == ()


def test_daily_total_is_exact():
    rows = tuple(drow(asset=f"A{i}", value=v) for i, v in enumerate(("0.1", "0.2", "123456789012345678901234567890.1")))
    assert DailyClose("alice", DAY, "final", rows, T0).total == D("123456789012345678901234567890.4")


def test_final_and_carried_days_never_change(store):
    store.upsert_daily("alice", DAY, [drow(amount="1")])
    assert store.finalize_day("alice", DAY) is True
    assert store.finalize_day("alice", DAY) is False                      # idempotent
    assert store.finalize_day("alice", DAY, carried=True) is False
    assert store.upsert_daily("alice", DAY, [drow(amount="2")]) is False
    assert store.upsert_daily("alice", DAY, [drow(amount="3")], state="final") is False
    [close] = store.daily_closes("alice", DAY, DAY)
    assert (close.state, close.rows) == ("final", (drow(amount="1"),))
    later = DAY + timedelta(days=1)
    store.upsert_daily("alice", later, [drow()])
    assert store.finalize_day("alice", later, carried=True) is True
    assert store.upsert_daily("alice", later, [drow(amount="9")]) is False
    assert store.daily_closes("alice", later, later)[0].state == "carried"
    assert store.finalize_day("alice", DAY - timedelta(days=1)) is False  # never written


def test_upsert_daily_can_write_a_final_day_directly(store):
    assert store.upsert_daily("alice", DAY, [drow()], state="final") is True
    assert store.daily_closes("alice", DAY, DAY)[0].state == "final"
    assert store.open_days(DAY + timedelta(days=5)) == []


def test_open_days(store):
    for user, day in (("bob", DAY), ("alice", DAY), ("alice", DAY + timedelta(days=1)), ("alice", DAY + timedelta(days=2))):
        store.upsert_daily(user, day, [drow()])
    store.finalize_day("alice", DAY + timedelta(days=1))
    assert store.open_days(DAY + timedelta(days=2)) == [("alice", DAY), ("bob", DAY)]   # strictly before
    assert store.open_days(DAY + timedelta(days=3)) == [("alice", DAY), ("bob", DAY), ("alice", DAY + timedelta(days=2))]
    assert store.open_days(DAY) == []


def test_daily_closes_range_is_inclusive_and_per_user(store):
    for offset in range(5):
        store.upsert_daily("alice", DAY + timedelta(days=offset), [drow(amount=str(offset))])
    store.upsert_daily("bob", DAY + timedelta(days=1), [drow("bob:okx")])
    closes = store.daily_closes("alice", DAY + timedelta(days=1), DAY + timedelta(days=3))
    assert [c.day for c in closes] == [DAY + timedelta(days=d) for d in (1, 2, 3)]
    assert [c.rows[0].amount for c in closes] == [D(1), D(2), D(3)]
    assert store.daily_closes("carol", DAY, DAY + timedelta(days=9)) == []
    with pytest.raises(ValueError, match="after end"):
        store.daily_closes("alice", DAY + timedelta(days=1), DAY)


def test_daily_bad_inputs(store):
    with pytest.raises(ValueError, match="datetime.date"):
        store.upsert_daily("alice", T0, [drow()])
    with pytest.raises(ValueError, match="state must be one of"):
        store.upsert_daily("alice", DAY, [drow()], state="closed")
    with pytest.raises(ValueError, match="twice"):
        store.upsert_daily("alice", DAY, [drow(), drow(amount="2")])
    with pytest.raises(ValueError, match="account_status"):
        drow(status="failed")
    with pytest.raises(ValueError, match="user_id"):
        store.finalize_day("", DAY)
    with pytest.raises(ValueError, match="datetime.date"):
        store.open_days(T0)
    assert store.daily_closes("alice", DAY, DAY) == []


# --- journal ------------------------------------------------------------------------------------

def test_trades_round_trip_newest_first(store):
    trade = TradeIn("alice", "kraken", "BTC/USD", "buy", D("0.00012345"), D("61234.5"), None, D("0.0001"), T0)
    ids = [store.add_trade(trade),
           store.add_trade(TradeIn("alice", "okx", "ETH/USDT", "sell", D(2), D(3000), D("-12.5"), None, T0 + MIN)),
           store.add_trade(TradeIn("bob", "okx", "ETH/USDT", "sell", D(1), D(3000), D(1), None, T0 + 2 * MIN))]
    alice = store.trades("alice")
    assert [t.id for t in alice] == [ids[1], ids[0]]
    assert alice[1].pnl is None and alice[1].fee == D("0.0001") and alice[1].amount == D("0.00012345")
    assert alice[1].executed_at == T0 and alice[1].executed_at.tzinfo is timezone.utc
    assert (alice[0].side, alice[0].pnl, alice[0].symbol) == ("sell", D("-12.5"), "ETH/USDT")
    assert [t.id for t in store.trades("alice", limit=1)] == [ids[1]]
    for bad in (0, 1001, 2.0):
        with pytest.raises(ValueError, match="limit"):
            store.trades("alice", limit=bad)
    with pytest.raises(ValueError, match="side"):
        TradeIn("alice", "okx", "ETH/USDT", "short", D(1), D(1), None, None, T0)


def test_alerts_round_trip_newest_first(store):
    low = AlertIn("BALANCE_LOW", "firing", "warning", "alice", "kraken", D("99.5"), D(100), "alice kraken below 100", T0)
    drop = AlertIn("BALANCE_DROP", "resolved", "info", "bob", None, None, D("10"), "recovered", T0 + MIN)
    first, second = store.add_alert(low), store.add_alert(drop)
    assert second > first
    alerts = store.recent_alerts()
    assert [a.id for a in alerts] == [second, first]
    assert (alerts[0].broker, alerts[0].value, alerts[0].threshold, alerts[0].message) == (None, None, D(10), "recovered")
    assert (alerts[1].type, alerts[1].value, alerts[1].created_at) == ("BALANCE_LOW", D("99.5"), T0)
    assert len(store.recent_alerts(limit=1)) == 1
    with pytest.raises(ValueError, match="limit"):
        store.recent_alerts(limit=0)
    with pytest.raises(ValueError, match="timezone-aware"):
        AlertIn("BALANCE_LOW", "firing", "warning", "alice", None, None, None, "x", datetime(2025, 1, 1))
