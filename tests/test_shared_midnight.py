"""Midnight with several processes on one store: only the closer finalises a day, a process started
after midnight never does, and days during which no process ran are carried (no gap).

Managers stand for processes (each its own identity and leases); their history runs on one
injectable wall clock that the test moves across midnight. SQLite and PostgreSQL.
"""
from __future__ import annotations

import datetime as dt
import time

from bot.multi_account_broker_manager import MultiAccountBrokerManager

DAY = dt.date(2026, 3, 14)
UTC = dt.timezone.utc


class WallClock:
    def __init__(self, at: dt.datetime):
        self.at = at

    def __call__(self) -> dt.datetime:
        return self.at


def paper_config(config, database_url):
    config.settings(database_url=database_url, cache_ttl_seconds=3600)
    config.user("alice", {"paper": {"paper": True, "balances": {"USD": "100"}}})
    config.user("bob", {"paper": {"paper": True, "balances": {"USD": "50"}}})
    return config.load()


def states(store, user, start, end):
    return [(c.day, c.state) for c in store.daily_closes(user, start, end)]


def wait_until(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"{what} not within {timeout} s"
        time.sleep(0.02)  # polling a deadline, not synchronising


def test_the_day_is_finalised_once_by_the_closer(config, database_url):
    loaded = paper_config(config, database_url)
    clock = WallClock(dt.datetime.combine(DAY, dt.time(23, 59), UTC))
    monitor = MultiAccountBrokerManager(loaded, role="reader", now=clock).open()
    try:
        monitor.start_scheduler()  # a scheduler: it keeps the closer lease
        wait_until(lambda: monitor.truth.keeper.closer, 5.0, "the monitor holding the closer lease")
        monitor.refresh()
        monitor.history.flush()
        store = monitor.history.store
        assert states(store, "alice", DAY, DAY) == [(DAY, "provisional")]

        clock.at = dt.datetime.combine(DAY + dt.timedelta(days=1), dt.time(0, 0, 5), UTC)
        cli = MultiAccountBrokerManager(loaded, role="auto", now=clock).open()  # a CLI started after midnight
        try:
            cli.refresh(force=False)
            cli.history.flush()
            assert cli.history.finalize_missed_days() == 0 and cli.history.close_day(DAY) == 0
            assert states(store, "alice", DAY, DAY) == [(DAY, "provisional")]  # not carried by the CLI
        finally:
            cli.close()

        assert monitor.history.close_day(DAY) == 2  # the midnight job of the closer: alice and bob
        assert monitor.history.close_day(DAY) == 0
        assert states(store, "alice", DAY, DAY) == states(store, "bob", DAY, DAY) == [(DAY, "final")]
        alice, = store.daily_closes("alice", DAY, DAY)
        assert [(r.asset, r.amount) for r in alice.rows] == [("USD", 100)]
    finally:
        monitor.close()

    # nothing ran on DAY + 2; the next process, on DAY + 3, closes DAY + 1 and fills DAY + 2
    clock.at = dt.datetime.combine(DAY + dt.timedelta(days=3), dt.time(9, 0), UTC)
    later = MultiAccountBrokerManager(loaded, now=clock).open()
    try:
        later.refresh()
        later.history.flush()
        store = later.history.store
        days = [DAY + dt.timedelta(days=n) for n in range(4)]
        assert states(store, "alice", days[0], days[3]) == [
            (days[0], "final"), (days[1], "carried"), (days[2], "carried"), (days[3], "provisional")]
        gap, = store.daily_closes("alice", days[2], days[2])
        assert [(r.amount, r.account_status) for r in gap.rows] == [(100, "stale")]
    finally:
        later.close()
