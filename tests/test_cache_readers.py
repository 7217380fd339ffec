"""BalanceCache readers take no lock: a writer inside its critical section never holds them up,
and what they see is always a whole (state, freshness) pair."""
from __future__ import annotations

import threading
from decimal import Decimal

from bot.balances.cache import BalanceCache
from bot.core.state import AccountState, Status
from tests.clock import Clock


def state(account_id, value="1"):
    return AccountState(account_id=account_id, owner="u", broker="b", exchange="kraken", status=Status.OK,
                        value=Decimal(value), fetched_at=1.0)


def test_readers_answer_while_a_writer_holds_the_lock():
    cache = BalanceCache(ttl_seconds=120, timer=Clock())
    cache.claim(["a"], readable={"a"}, force=False)
    cache.complete(state("a", "5"))
    answers = []

    def read():
        answers.append((cache.fresh(["a"]), cache.latest("a"), cache.latest_of(["a", "b"]), cache.states(),
                        cache.stats()))
    with cache._lock:  # a writer in its critical section
        reader = threading.Thread(target=read)
        reader.start()
        reader.join(10)
        finished = not reader.is_alive()
    reader.join()
    assert finished, "a reader waited for the writer's lock"
    fresh, latest, latest_of, states, stats = answers[0]
    assert [s.value for s in fresh] == [Decimal(5)] and latest.value == Decimal(5)
    assert latest_of == {"a": latest, "b": None} and states == {"a": latest} and stats == (1, 0)


def test_an_adopted_state_is_fresh_only_when_said_and_replaces_the_latest():
    clock = Clock()
    cache = BalanceCache(ttl_seconds=120, timer=clock)
    cache.claim(["a"], readable={"a"}, force=False)
    cache.complete(state("a", "1"))
    previous = cache.adopt(state("a", "2"), fresh=False)
    assert previous.value == Decimal(1)
    assert cache.fresh(["a"]) is None and cache.latest("a").value == Decimal(2)
    assert len(cache.claim(["a"], readable={"a"}, force=False)[0]) == 1   # not fresh: read again
    cache.adopt(state("a", "3"), fresh=True)                              # the flight is left alone ...
    assert cache.fresh(["a"])[0].value == Decimal(3)
    clock.now += 121
    assert cache.fresh(["a"]) is None                                     # ... and the TTL counts from the adoption


def test_a_reader_sees_every_completion_in_order_while_a_writer_replaces_states():
    cache = BalanceCache(ttl_seconds=120, timer=Clock())
    rounds = 2000
    seen: list[int] = []
    done = threading.Event()

    def write():
        for i in range(1, rounds + 1):
            cache.claim(["a"], readable={"a"}, force=True)
            cache.complete(state("a", str(i)))
        done.set()
    writer = threading.Thread(target=write)
    writer.start()
    while not done.is_set():
        found = cache.fresh(["a"])
        if found is not None:
            seen.append(int(found[0].value))
    writer.join()
    assert seen == sorted(seen)                       # never an older state after a newer one
    assert cache.fresh(["a"])[0].value == Decimal(rounds)
