"""BalanceCache flights: one wait for many reads, woken when the last ends, bounded by its timeout."""
from __future__ import annotations

import threading
import time
from decimal import Decimal

from bot.balances.cache import BalanceCache
from bot.core.state import AccountState, Status
from tests.clock import Clock


def state(account_id, fetched_at=1.0):
    return AccountState(account_id=account_id, owner="u", broker="b", exchange="kraken", status=Status.OK,
                        value=Decimal(1), fetched_at=fetched_at)


def test_one_wait_covers_many_flights_and_ends_when_the_last_does():
    cache = BalanceCache(ttl_seconds=120, timer=Clock())
    started, waits = cache.claim(["a", "b", "c"], readable={"a", "b", "c"}, force=False)
    finisher = threading.Thread(target=lambda: [cache.complete(state(i)) for i in ("a", "b", "c")])
    finisher.start()
    cache.wait(waits.values(), timeout=10)
    finisher.join()
    assert all(f.done() for f in waits.values()) and [f.result().account_id for f in waits.values()] == ["a", "b", "c"]


def test_a_wait_returns_at_its_timeout_with_the_rest_still_in_flight():
    cache = BalanceCache(ttl_seconds=120, timer=Clock())
    _, waits = cache.claim(["a", "b"], readable={"a", "b"}, force=False)
    cache.complete(state("a"))
    started = time.monotonic()
    cache.wait(waits.values(), timeout=0.05)
    assert time.monotonic() - started < 2
    assert waits["a"].done() and not waits["b"].done()


def test_abandoning_ends_every_flight_and_wakes_its_waiters():
    cache = BalanceCache(ttl_seconds=120, timer=Clock())
    _, waits = cache.claim(["a", "b"], readable={"a", "b"}, force=False)
    waiter = threading.Thread(target=cache.wait, args=(list(waits.values()), 10))
    waiter.start()
    assert cache.abandon_inflight(lambda account_id: state(account_id).failed("ServiceClosed", "ServiceClosed")) == 2
    waiter.join(5)
    assert not waiter.is_alive() and all(f.result().error == "ServiceClosed" for f in waits.values())


def test_reads_start_never_read_first_then_the_oldest():
    cache = BalanceCache(ttl_seconds=120, timer=Clock())
    for account_id, fetched in (("old", 5.0), ("older", 2.0)):
        cache.claim([account_id], readable={account_id}, force=True)
        cache.complete(state(account_id, fetched))
    started, _ = cache.claim(["old", "new", "older"], readable={"old", "new", "older"}, force=True)
    assert [account_id for account_id, _ in started] == ["new", "older", "old"]
