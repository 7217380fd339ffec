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


def test_an_owner_total_is_answered_only_while_every_account_of_the_owner_is_fresh():
    from bot.balances.cache import MISSING

    clock = Clock()
    cache = BalanceCache(ttl_seconds=120, timer=clock, groups={"u": ("a", "b"), "v": ("c",)})
    cache.claim(["a", "b", "c"], readable={"a", "b", "c"}, force=False)
    cache.complete(state("a", "1.10"))
    assert cache.fresh_total("u") is MISSING                      # b never read: no total
    clock.now += 60
    cache.complete(state("b", "2.25"))
    assert cache.fresh_total("u") == Decimal("3.35")
    cache.complete(AccountState(account_id="c", owner="v", broker="b", exchange="kraken", status=Status.ERROR,
                                value=None, fetched_at=1.0, error="boom"))
    assert cache.fresh_total("v") is None                         # fresh, and unknown: None, never 0
    clock.now += 61                                               # a is 121 s old, b 61 s
    assert cache.fresh_total("u") is MISSING
    cache.claim(["a"], readable={"a"}, force=True)
    cache.complete(state("a", "5"))
    assert cache.fresh_total("u") == Decimal("7.25")              # a again, with b's state
    cache.adopt(state("b", "1"), fresh=False)                     # adopted as not fresh: no total
    assert cache.fresh_total("u") is MISSING and cache.fresh_total("nobody") is MISSING


def test_owner_totals_follow_the_writes_whole_while_a_writer_replaces_both_accounts():
    cache = BalanceCache(ttl_seconds=120, timer=Clock(), groups={"u": ("a", "b")})
    rounds, seen, done = 1000, [], threading.Event()

    def write():
        for i in range(1, rounds + 1):
            cache.claim(["a", "b"], readable={"a", "b"}, force=True)
            cache.complete(state("a", str(i)))
            cache.complete(state("b", str(i)))
        done.set()
    writer = threading.Thread(target=write)
    writer.start()
    while not done.is_set():
        total = cache.fresh_total("u")
        if not isinstance(total, Decimal):
            continue
        seen.append(total)
    writer.join()
    # a total is a + b of one moment: (i, i-1) or (i, i); never a sum of states no write made
    assert all(t % 1 == 0 and Decimal(1) <= t <= 2 * rounds for t in seen) and seen == sorted(seen)
    assert cache.fresh_total("u") == 2 * rounds
