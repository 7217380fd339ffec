"""The shared truth in the store (`bot.store.truth`): account states, key leases, round requests,
the change feed and the carried days, on a real SQLite file and a real PostgreSQL."""
from __future__ import annotations

import threading
import time
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal as D

import pytest

from bot.core.state import AccountState, Holding, Status
from bot.store import BalanceStore, DailyRow
from bot.store.leases import CLOSER
from bot.store.truth import Floors, TruthStore

KEY = "key:0123456789abcdef"
SECOND = timedelta(seconds=1)


def state(value="1234.5600", status=Status.OK, error=None, error_class=None, fetched_at=None, account="alice:kraken"):
    owner, broker = account.split(":")
    holdings = {"BTC": Holding(D("0.0123456789"), D("50000.1"), D("617.2839")),
                "XYZ": Holding(D("3.000"), None, None), "USD": Holding(D("617.2761"), D("1"), D("617.2761"))}
    return AccountState(account, owner, broker, "kraken", status, None if value is None else D(value),
                        holdings if value is not None else {}, ("XYZ",) if value is not None else (),
                        time.time() if fetched_at is None else fetched_at, error, error_class)


@pytest.fixture
def truth(store):
    return TruthStore(store)


def test_states_round_trip_exactly_and_count_their_versions(truth):
    first = state()
    written = truth.publish([first], "host:1/a", read_started={"alice:kraken": first.fetched_at - 0.25})
    row, = truth.states()
    assert abs(row.read_started_at.timestamp() - (first.fetched_at - 0.25)) < 1e-5
    assert row.state.holdings == first.holdings and row.state.value == D("1234.5600")
    assert row.state.unpriced == ("XYZ",) and abs(row.state.fetched_at - first.fetched_at) < 1e-5
    assert (row.reader, row.version, row.updated_at) == ("host:1/a", 1, written)
    stale = AccountState(**{**{f: getattr(first, f) for f in first.__slots__}, "status": Status.STALE,
                            "error": "RequestTimeout: kraken POST timed out", "error_class": "RequestTimeout"})
    truth.publish([stale, state(value=None, status=Status.ERROR, error="AuthenticationError: bad key",
                                error_class="AuthenticationError", account="bob:kraken")], "host:2/b")
    rows = {r.state.account_id: r for r in truth.states()}
    alice, bob = rows["alice:kraken"], rows["bob:kraken"]
    assert alice.read_started_at is None  # not given: unknown
    assert alice.version == 2 and alice.reader == "host:2/b" and alice.state.status is Status.STALE
    assert alice.state.error_class == "RequestTimeout" and alice.state.value == D("1234.5600")
    assert bob.state.value is None and bob.state.holdings == {} and bob.state.error_class == "AuthenticationError"


def test_a_reload_since_a_watermark_returns_what_changed(truth):
    truth.publish([state(account="alice:kraken")], "host:1/a")
    truth.publish([state(account="bob:kraken")], "host:1/a")
    later = truth.now() + timedelta(seconds=10)  # beyond the overlap: nothing written since
    assert truth.states(since=later) == []
    written = truth.publish([state(account="carol:kraken")], "host:1/a")
    assert "carol:kraken" in {r.state.account_id for r in truth.states(since=written)}


def test_a_reload_can_leave_out_the_rows_one_reader_wrote(truth):
    truth.publish([state(account="alice:kraken")], "host:1/a")
    truth.publish([state(account="bob:kraken")], "host:2/b")
    assert {r.state.account_id for r in truth.states(except_reader="host:1/a")} == {"bob:kraken"}
    truth.publish([state(account="bob:kraken")], "host:1/a")  # now host:1/a's row too
    assert truth.states(except_reader="host:1/a") == []
    assert {r.state.account_id for r in truth.states(except_reader="host:3/c")} == {"alice:kraken", "bob:kraken"}


def test_the_change_feed_sees_another_connections_commit(store, database_url):
    truth = TruthStore(store)
    feed, stop = truth.change_feed(), threading.Event()
    feed.prime()
    assert feed.wait(stop, 0.6) is False  # nothing committed
    other = BalanceStore(database_url)
    try:
        started = time.monotonic()
        TruthStore(other).publish([state()], "host:9/z")
        assert feed.wait(stop, 5.0) is True
        assert time.monotonic() - started < 1.0
    finally:
        feed.close()
        other.close()


def test_one_claimant_gets_a_free_lease_the_other_sees_it_held(truth):
    first = truth.claim("host:1/a", "auto", [KEY, CLOSER])
    assert set(first.held) == {KEY, CLOSER}
    second = truth.claim("host:2/b", "auto", [KEY, CLOSER])
    assert second.held == {} and second.others[KEY].holder == "host:1/a"
    assert second.others[KEY].expires_at - second.now > timedelta(seconds=25)


def test_concurrent_claims_give_a_lease_to_exactly_one(truth, store, database_url):
    stores = [BalanceStore(database_url) for _ in range(4)]
    results, barrier = {}, threading.Barrier(len(stores))

    def claim(index):
        barrier.wait()
        results[index] = TruthStore(stores[index]).claim(f"host:{index}/x", "auto", [KEY])
    threads = [threading.Thread(target=claim, args=(i,)) for i in range(len(stores))]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        for s in stores:
            s.close()
    winners = [i for i, claimed in results.items() if KEY in claimed.held]
    assert len(winners) == 1
    assert truth.leases()[KEY].holder == f"host:{winners[0]}/x"


def test_an_expired_lease_is_taken_over_with_its_floors(truth):
    truth.claim("host:1/a", "reader", [KEY], duration=SECOND)
    last_call = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)
    truth.publish([], "host:1/a", [Floors(KEY, 1_700_000_000_123, last_call)])
    assert truth.claim("host:2/b", "auto", [KEY]).held == {}  # still live
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        taken = truth.claim("host:2/b", "auto", [KEY])
        if taken.held:
            break
        time.sleep(0.05)  # polling a deadline, not synchronising
    lease = taken.held[KEY]
    assert lease.holder == "host:2/b" and lease.nonce_floor == 1_700_000_000_123 and lease.last_call_at == last_call


def test_a_reader_asks_an_auto_holder_and_gets_the_key_reserved(truth):
    truth.claim("host:1/auto", "auto", [KEY])
    asked = truth.claim("host:2/reader", "reader", [KEY])
    assert asked.held == {} and asked.others[KEY].wanted_by == "host:2/reader"
    renewed = truth.claim("host:1/auto", "auto", [KEY])
    assert renewed.held[KEY].wanted_by == "host:2/reader"  # the holder sees the request
    truth.claim("host:1/auto", "auto", [], handing_over=[KEY], floors={KEY: Floors(KEY, 42, None)})
    assert truth.claim("host:3/other", "auto", [KEY]).held == {}  # reserved for the reader
    got = truth.claim("host:2/reader", "reader", [KEY])
    assert got.held[KEY].holder == "host:2/reader" and got.held[KEY].nonce_floor == 42
    assert got.held[KEY].wanted_by is None


def test_a_reader_does_not_ask_for_the_closer_nor_a_readers_key(truth):
    truth.claim("host:1/r", "reader", [KEY])
    truth.claim("host:1/auto", "auto", [CLOSER])
    asked = truth.claim("host:2/r", "reader", [KEY, CLOSER])
    assert asked.others[KEY].wanted_by is None and asked.others[CLOSER].wanted_by is None


def test_released_leases_expire_at_once_and_keep_their_floors(truth):
    truth.claim("host:1/a", "auto", [KEY])
    truth.release("host:1/a", [KEY], {KEY: Floors(KEY, 7, None)})
    truth.release("host:2/b", [KEY])  # not the holder: nothing happens
    taken = truth.claim("host:2/b", "auto", [KEY])
    assert taken.held[KEY].nonce_floor == 7 and taken.held[KEY].holder == "host:2/b"


def test_floors_carry_the_keys_counter_level_through_publish_claim_and_release(truth):
    at = [datetime(2026, 1, 1, 12, 0, i, tzinfo=timezone.utc) for i in range(5)]
    truth.claim("host:1/a", "auto", [KEY])
    assert truth.leases()[KEY].counter_level is None  # never read
    truth.publish([], "host:1/a", [Floors(KEY, 10, at[0], 7.5)])
    assert truth.leases()[KEY].counter_level == 7.5
    truth.publish([], "host:1/a", [Floors(KEY, 11, at[1], 3.25)])  # the holder's newest replaces
    truth.publish([], "host:1/a", [Floors(KEY, None, None, None)])  # unknown: kept
    truth.publish([], "host:2/b", [Floors(KEY, 99, at[4], 14.0)])   # not the holder: nothing
    lease = truth.leases()[KEY]
    assert (lease.nonce_floor, lease.last_call_at, lease.counter_level) == (11, at[1], 3.25)
    truth.claim("host:1/a", "auto", [KEY], floors={KEY: Floors(KEY, 12, at[2], 2.0)})  # renewal: the higher
    assert truth.leases()[KEY].counter_level == 3.25
    truth.claim("host:1/a", "auto", [KEY], floors={KEY: Floors(KEY, 12, at[2], 9.0)})
    assert truth.leases()[KEY].counter_level == 9.0
    truth.release("host:1/a", [KEY], {KEY: Floors(KEY, 13, at[3], 4.0)})
    taken = truth.claim("host:2/b", "auto", [KEY]).held[KEY]
    assert (taken.holder, taken.nonce_floor, taken.last_call_at, taken.counter_level) == ("host:2/b", 13, at[3], 9.0)
    truth.release("host:2/b", [KEY], {KEY: Floors(KEY, 14, at[4], 11.5)})
    assert truth.claim("host:1/a", "auto", [KEY]).held[KEY].counter_level == 11.5


def floors_of(truth) -> tuple:
    lease = truth.leases()[KEY]
    return lease.nonce_floor, lease.last_call_at, lease.counter_level


def test_a_holders_stale_floors_written_after_a_take_back_do_not_lower_the_row(truth):
    at = [datetime(2026, 1, 1, 12, 0, i, tzinfo=timezone.utc) for i in range(4)]
    truth.claim("host:1/a", "auto", [KEY])
    stale = Floors(KEY, 100, at[1], 6.0)  # computed by A's publisher while it held the key ...
    truth.release("host:1/a", [KEY])       # ... then A's lease ends before that batch is written
    assert KEY in truth.claim("host:2/b", "auto", [KEY]).held
    truth.publish([], "host:2/b", [Floors(KEY, 200, at[2], 9.0)])  # B's calls
    truth.release("host:2/b", [KEY], {KEY: Floors(KEY, 200, at[2], 9.0)})
    assert KEY in truth.claim("host:1/a", "auto", [KEY], floors={KEY: stale}).held  # A takes it back
    assert floors_of(truth) == (200, at[2], 9.0)
    truth.publish([], "host:1/a", [stale])  # A's old batch arrives
    assert floors_of(truth) == (200, at[2], 9.0)
    truth.publish([], "host:1/a", [Floors(KEY, 201, at[3], 2.0)])  # A's newer calls: raised, the level is theirs
    assert floors_of(truth) == (201, at[3], 2.0)


def test_written_floors_only_rise_and_unknowns_keep_the_rows(truth):
    at = [datetime(2026, 1, 1, 12, 0, i, tzinfo=timezone.utc) for i in range(4)]
    truth.claim("host:1/a", "auto", [KEY])
    truth.publish([], "host:1/a", [Floors(KEY, None, None, 1.5)])  # NULLs in the row take the given
    assert floors_of(truth) == (None, None, 1.5)
    truth.publish([], "host:1/a", [Floors(KEY, 10, at[2], 4.0)])
    assert floors_of(truth) == (10, at[2], 4.0)
    truth.publish([], "host:1/a", [Floors(KEY, None, None, None)])
    assert floors_of(truth) == (10, at[2], 4.0)
    truth.publish([], "host:1/a", [Floors(KEY, None, None, 8.0)])  # a level without its call: kept
    assert floors_of(truth) == (10, at[2], 4.0)
    truth.publish([], "host:1/a", [Floors(KEY, 9, at[2], 3.0)])  # the same call: its level, not a lower nonce
    assert floors_of(truth) == (10, at[2], 3.0)


def test_a_level_measured_at_an_older_call_does_not_replace_a_newer_one(truth):
    at = [datetime(2026, 1, 1, 12, 0, i, tzinfo=timezone.utc) for i in range(4)]
    truth.claim("host:1/a", "auto", [KEY])
    truth.publish([], "host:1/a", [Floors(KEY, 10, at[2], 4.0)])
    truth.publish([], "host:1/a", [Floors(KEY, 11, at[1], 8.0)])
    assert floors_of(truth) == (11, at[2], 4.0)
    older = at[1].astimezone(timezone(timedelta(hours=2)))  # later than at[2] as text, earlier in time
    truth.publish([], "host:1/a", [Floors(KEY, None, older, 8.0)])
    assert floors_of(truth) == (11, at[2], 4.0)


def test_a_workers_turn_carries_the_keys_counter_level(truth):
    turn, previous = truth.begin_read(KEY, "worker:1", "alice:kraken")
    assert (turn.nonce_floor, turn.since_last_call, turn.counter_level, previous) == (None, None, None, None)
    truth.finish_read(None, "worker:1", "scheduled_sync", turn, nonce=5, counter_level=13.5)
    turn, _ = truth.begin_read(KEY, "worker:2", "alice:kraken")
    assert (turn.nonce_floor, turn.counter_level) == (5, 13.5) and 0 <= turn.since_last_call < 5
    truth.finish_read(None, "worker:2", "scheduled_sync", turn, nonce=6, counter_level=2.0)  # its read continued 13.5
    turn, _ = truth.begin_read(KEY, "worker:1", "alice:kraken")
    assert (turn.nonce_floor, turn.counter_level) == (6, 2.0)
    truth.finish_read(None, "worker:1", "scheduled_sync", turn, nonce=None)  # a key without a counter
    turn, _ = truth.begin_read(KEY, "worker:2", "alice:kraken")
    assert (turn.nonce_floor, turn.counter_level) == (6, None)


def test_round_requests_are_numbered_and_listed_after_an_id(truth):
    assert truth.last_round_request() == 0
    first = truth.request_round("host:1/a", None)
    second = truth.request_round("host:2/b", "alice")
    assert truth.last_round_request() == second.id > first.id
    assert [(r.requested_by, r.owner) for r in truth.round_requests(first.id)] == [("host:2/b", "alice")]
    assert second.requested_at >= first.requested_at


def row(account="alice:kraken", asset="USD", amount="100", status="ok"):
    return DailyRow(account, asset, D(amount), D("1"), D(amount), "USD", status)


def test_days_without_a_process_are_carried_from_the_last_close(store):
    d0 = date(2026, 1, 10)
    store.upsert_daily("alice", d0, [row(amount="100")])
    store.finalize_day("alice", d0)
    store.upsert_daily("bob", d0 + timedelta(days=2), [row("bob:kraken", amount="5")])
    assert store.fill_missing_days(d0 + timedelta(days=4)) == 3 + 1  # alice: d0+1..3, bob: d0+3
    closes = store.daily_closes("alice", d0, d0 + timedelta(days=4))
    assert [(c.day, c.state) for c in closes] == [(d0, "final")] + [(d0 + timedelta(days=n), "carried") for n in (1, 2, 3)]
    assert all(c.rows[0].amount == D("100") and c.rows[0].account_status == "stale" for c in closes[1:])
    assert store.fill_missing_days(d0 + timedelta(days=4)) == 0  # idempotent
    assert [c.state for c in store.daily_closes("bob", d0, d0 + timedelta(days=3))] == ["provisional", "carried"]
