"""The incremental daily close, per backend: the history writer writes a user's provisional close
only when it changed (an unchanged round writes no history row; the shared ``account_states``
row of each account is still refreshed per read, as the one truth across processes needs), a batch's writes are one
transaction, and the set-based store calls (`replace_days`, `finalize_days`,
`finalize_open_days`) keep the per-day rules of `upsert_daily` / `finalize_day`.

Rows touched are observed from outside the writer: SQLite's ``PRAGMA data_version`` on a
separate connection (it changes exactly when another connection commits a change), each day's
``updated_at``, and on PostgreSQL each row's ``xmin`` (the transaction that last wrote it).
"""
from __future__ import annotations

import sqlite3
import threading
from datetime import date, timedelta
from decimal import Decimal as D

import pytest
from sqlalchemy import create_engine, make_url, text

from bot.multi_account_broker_manager import MultiAccountBrokerManager
from bot.store import BalanceStore, DailyRow
from tests.conftest import FAST_SETTINGS, broker_on, no_spacing

DAY = date(2025, 3, 1)
USERS = ("alice", "bob", "carol")


def rows(user: str, tag: str, assets=("BTC", "USD")) -> list[DailyRow]:
    return [DailyRow(f"{user}:kraken", asset, D(tag), D(1), D(tag), "USD", "ok") for asset in assets]


class Observer:
    """What the writer touched, seen through a connection of its own."""

    def __init__(self, url: str):
        self.url = url
        self.sqlite = make_url(url).get_backend_name() == "sqlite"
        if self.sqlite:
            self._raw = sqlite3.connect(make_url(url).database)
        else:
            self._engine = create_engine(url)

    def data_version(self) -> int | None:
        """SQLite: changes whenever another connection committed a change; None on PostgreSQL."""
        return self._raw.execute("PRAGMA data_version").fetchone()[0] if self.sqlite else None

    def days(self) -> dict[tuple[str, str], tuple]:
        """(user, day as text) -> (updated_at, state[, xmin]) of every daily_days row."""
        xmin = "" if self.sqlite else ", xmin::text"
        query = f"SELECT user_id, CAST(day AS text), updated_at, state{xmin} FROM daily_days"
        if self.sqlite:
            return {tuple(row[:2]): tuple(row[2:]) for row in self._raw.execute(query)}
        with self._engine.connect() as connection:
            return {tuple(row[:2]): tuple(row[2:]) for row in connection.execute(text(query))}

    def today(self, day: date) -> dict[str, tuple]:
        """user -> (updated_at, state[, xmin]) of the daily_days rows of ``day``."""
        return {user: entry for (user, when), entry in self.days().items() if when == day.isoformat()}

    def closes(self) -> dict[str, list[tuple]]:
        """user -> [(id[, xmin])] of its daily_closes rows."""
        xmin = "" if self.sqlite else ", xmin::text"
        query = f"SELECT user_id, id{xmin} FROM daily_closes ORDER BY id"
        out: dict[str, list[tuple]] = {}
        if self.sqlite:
            found = self._raw.execute(query).fetchall()
        else:
            with self._engine.connect() as connection:
                found = connection.execute(text(query)).all()
        for row in found:
            out.setdefault(row[0], []).append(tuple(row[1:]))
        return out

    def close(self) -> None:
        if self.sqlite:
            self._raw.close()
        else:
            self._engine.dispose()


@pytest.fixture
def observer(database_url):
    seen = Observer(database_url)
    yield seen
    seen.close()


def kraken_manager(config, kraken, database_url, managers, users=USERS) -> tuple[MultiAccountBrokerManager, dict]:
    creds = {}
    config.settings(**FAST_SETTINGS, rate_limits=no_spacing("kraken"), database_url=database_url)
    for user in users:
        creds[user] = kraken.add_account({"USD": "100", "BTC": "0.01"})
        config.user(user, {"kraken": broker_on(kraken, creds[user])})
    manager = MultiAccountBrokerManager(config.load()).open()
    managers.append(manager)
    return manager, creds


def round_trip(manager) -> None:
    manager.refresh(force=True)
    manager.history.flush()


# --- the writer ---------------------------------------------------------------------------------

def test_an_unchanged_round_writes_nothing(config, kraken, database_url, managers, observer):
    manager, _ = kraken_manager(config, kraken, database_url, managers)
    round_trip(manager)
    days, closes = observer.days(), observer.closes()
    assert set(observer.today(manager.history.today())) == set(USERS) and all(len(closes[user]) == 2 for user in USERS)
    round_trip(manager)   # same values within snapshot_interval_minutes: no snapshot either
    round_trip(manager)
    assert observer.days() == days
    assert observer.closes() == closes


def test_a_changed_user_is_rewritten_alone_in_one_transaction(config, kraken, database_url, managers, observer):
    manager, creds = kraken_manager(config, kraken, database_url, managers)
    today = manager.history.today()
    round_trip(manager)
    days, closes = observer.today(today), observer.closes()
    store = manager.history.store
    kraken.set_balance(creds["bob"]["api_key"], "USD", "250")
    round_trip(manager)
    after_days, after_closes = observer.today(today), observer.closes()
    assert {u: after_days[u] for u in ("alice", "carol")} == {u: days[u] for u in ("alice", "carol")}
    assert {u: after_closes[u] for u in ("alice", "carol")} == {u: closes[u] for u in ("alice", "carol")}
    assert after_days["bob"] != days["bob"]
    bob, = store.daily_closes("bob", manager.history.today(), manager.history.today())
    assert bob.total == D("750") and {r.asset: r.amount for r in bob.rows} == {"USD": D("250"), "BTC": D("0.01")}
    newest = store.recent_snapshots("bob:kraken", 1)[0]
    # the snapshot and the close were written by one transaction: same commit time on the day row
    # (SQLite: same updated_at text as the snapshot's created_at; PostgreSQL: same xmin)
    if observer.sqlite:
        assert after_days["bob"][0] == newest.created_at.isoformat(sep=" ", timespec="microseconds")
    else:
        with create_engine(database_url).connect() as connection:
            xmin = connection.execute(text("SELECT xmin::text FROM snapshots WHERE id = :id"), {"id": newest.id}).scalar()
        assert after_days["bob"][2] == xmin


def test_a_status_change_rewrites_the_close_as_stale(config, kraken, database_url, managers, observer):
    manager, creds = kraken_manager(config, kraken, database_url, managers)
    today = manager.history.today()
    round_trip(manager)
    days = observer.today(today)
    kraken.inject("invalid_key", api_key=creds["carol"]["api_key"], count=5)
    round_trip(manager)
    after = observer.today(today)
    assert after["carol"] != days["carol"] and after["alice"] == days["alice"]
    carol, = manager.history.store.daily_closes("carol", manager.history.today(), manager.history.today())
    assert {r.account_status for r in carol.rows} == {"stale"} and carol.total == D("600")


def test_close_day_finalises_every_enabled_user_once(config, database_url, managers, observer):
    config.settings(database_url=database_url)
    for i in range(40):
        config.user(f"u{i:02d}", {"paper": {"paper": True, "balances": {"USD": str(10 + i)}}})
    config.user("off", {"paper": {"paper": True, "balances": {"USD": "1"}}}, enabled=False)
    manager = MultiAccountBrokerManager(config.load()).open()
    managers.append(manager)
    recorder, store = manager.history, manager.history.store
    day = recorder.today()
    store.upsert_daily("off", day, rows("off", "1"))
    store.upsert_daily("u00", day - timedelta(days=3), rows("u00", "5"))   # a missed midnight
    assert recorder.close_day(day) == 40
    states = {user: entry[1] for user, entry in observer.today(day).items()}
    assert states == {**{f"u{i:02d}": "final" for i in range(40)}, "off": "provisional"}
    totals = {c.user_id: c.total for i in range(40) for c in store.daily_closes(f"u{i:02d}", day, day)}
    assert totals == {f"u{i:02d}": D(10 + i) for i in range(40)}
    before = observer.days()
    assert recorder.close_day(day) == 0      # idempotent: nothing written, nothing closed again
    assert observer.days() == before
    # the missed midnight, plus the two days in between during which no process ran (issue 10: no gap)
    assert recorder.finalize_missed_days() == 3
    assert [c.state for c in store.daily_closes("u00", day - timedelta(days=3), day - timedelta(days=1))] == [
        "carried"] * 3
    assert store.daily_closes("off", day, day)[0].state == "provisional"   # today is not missed


# --- the set-based store calls ------------------------------------------------------------------

def test_replace_days_writes_many_users_and_leaves_closed_days(store):
    users = [f"user{i:03d}" for i in range(120)]
    assert store.upsert_daily("user007", DAY, rows("user007", "7"))
    assert store.finalize_day("user007", DAY)
    written = store.replace_days(DAY, {user: rows(user, "1") for user in users})
    assert written == set(users) - {"user007"}
    assert store.daily_closes("user007", DAY, DAY)[0].rows == tuple(rows("user007", "7"))
    # a second write replaces each day whole: old rows gone, new ones only
    again = store.replace_days(DAY, {user: rows(user, "2", assets=("ETH",)) for user in users[:60]})
    assert again == set(users[:60]) - {"user007"}
    first, = store.daily_closes("user001", DAY, DAY)
    assert first.state == "provisional" and first.rows == tuple(rows("user001", "2", assets=("ETH",)))
    last, = store.daily_closes("user119", DAY, DAY)
    assert last.rows == tuple(rows("user119", "1"))
    assert store.replace_days(DAY, {"user001": []}) == {"user001"}
    assert store.daily_closes("user001", DAY, DAY)[0].rows == ()
    with pytest.raises(ValueError, match="twice"):
        store.replace_days(DAY, {"user002": rows("user002", "1") + rows("user002", "3")})
    assert store.daily_closes("user002", DAY, DAY)[0].rows == tuple(rows("user002", "2", assets=("ETH",)))


def test_finalize_days_closes_only_the_named_provisional_days(store):
    for user in ("a", "b", "c"):
        store.upsert_daily(user, DAY, rows(user, "1"))
    store.upsert_daily("a", DAY + timedelta(days=1), rows("a", "2"))
    store.finalize_day("b", DAY)
    assert store.finalize_days(["a", "b", "never"], DAY) == 1
    assert [c.state for u in ("a", "b", "c") for c in store.daily_closes(u, DAY, DAY)] == ["final", "final",
                                                                                          "provisional"]
    assert store.daily_closes("a", DAY + timedelta(days=1), DAY + timedelta(days=1))[0].state == "provisional"
    assert store.finalize_days(["a", "b"], DAY) == 0
    assert store.finalize_days(["c"], DAY, carried=True) == 1
    assert store.daily_closes("c", DAY, DAY)[0].state == "carried"
    assert store.replace_days(DAY, {"c": rows("c", "9")}) == set()   # a closed day never changes


def test_finalize_open_days_carries_only_earlier_provisional_days(store):
    store.upsert_daily("a", DAY - timedelta(days=2), rows("a", "1"))
    store.upsert_daily("b", DAY - timedelta(days=1), rows("b", "1"))
    store.upsert_daily("b", DAY, rows("b", "2"))
    store.upsert_daily("c", DAY - timedelta(days=1), rows("c", "1"), state="final")
    assert store.finalize_open_days(before=DAY) == 2
    assert store.open_days(before=DAY + timedelta(days=1)) == [("b", DAY)]
    states = {(c.user_id, c.day): c.state for u in "abc" for c in store.daily_closes(u, DAY - timedelta(days=5), DAY)}
    assert states == {("a", DAY - timedelta(days=2)): "carried", ("b", DAY - timedelta(days=1)): "carried",
                      ("b", DAY): "provisional", ("c", DAY - timedelta(days=1)): "final"}
    assert store.finalize_open_days(before=DAY) == 0


def test_concurrent_set_based_and_single_writes_never_mix(store):
    users = [f"s{i:02d}" for i in range(20)]
    writers, rounds = 4, 12
    start = threading.Barrier(writers + 1)
    errors: list[BaseException] = []

    def bulk(n: int) -> None:
        try:
            start.wait(timeout=60)
            for i in range(rounds):
                tag = f"{n}.{i:04d}"
                store.replace_days(DAY, {user: rows(user, tag, assets=("BTC", "ETH", "USD")) for user in users})
        except BaseException as error:  # reported below
            errors.append(error)

    def single() -> None:
        try:
            start.wait(timeout=60)
            for i in range(rounds):
                for user in users[::5]:
                    store.upsert_daily(user, DAY, rows(user, f"9.{i:04d}", assets=("BTC", "ETH", "USD")))
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=bulk, args=(n,)) for n in range(writers)] + [threading.Thread(target=single)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not errors, errors
    for user in users:
        close, = store.daily_closes(user, DAY, DAY)
        assert len(close.rows) == 3 and len({r.amount for r in close.rows}) == 1, close.rows  # one write, whole


def test_add_history_writes_snapshots_and_closes_together(store):
    from tests.test_store import T0, snap
    ids, written = store.add_history([snap("alice:kraken", "100", T0)], DAY, {"alice": rows("alice", "100")})
    assert len(ids) == 1 and written == {"alice"}
    assert store.latest_snapshots()[0].id == ids[0]
    assert store.daily_closes("alice", DAY, DAY)[0].total == D("200")
    assert store.add_history([], DAY, {}) == ([], set())
    with pytest.raises(ValueError):
        store.add_history([{"account_id": "x"}], DAY, {})


def test_a_recorder_that_was_never_started_closes_a_day_too(config, database_url, managers):
    from bot.history.recorder import HistoryRecorder
    for user in ("a", "b"):
        config.user(user, {"paper": {"paper": True, "balances": {"USD": "3"}}})
    manager = MultiAccountBrokerManager(config.load(), history=False)
    managers.append(manager)
    manager.refresh()
    store = BalanceStore(database_url)
    try:
        recorder = HistoryRecorder(manager, store, manager.config.settings)   # no writer thread
        result: list[int] = []
        closing = threading.Thread(target=lambda: result.append(recorder.close_day(recorder.today())))
        closing.start()
        closing.join(timeout=60)
        assert not closing.is_alive() and result == [2]   # flush has nothing to wait for
        assert [c.state for u in ("a", "b") for c in store.daily_closes(u, recorder.today(), recorder.today())] == \
            ["final", "final"]
    finally:
        store.close()
