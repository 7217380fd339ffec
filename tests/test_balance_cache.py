"""BalanceCache: freshness by TTL (a controlled clock), last state kept, single flight."""
from __future__ import annotations

from decimal import Decimal

from bot.core.state import AccountState, Status
from bot.balances.cache import BalanceCache
from tests.clock import Clock




def state(account_id, value="1", status=Status.OK):
    return AccountState(account_id=account_id, owner="u", broker="b", exchange="kraken", status=status,
                        value=Decimal(value), fetched_at=1.0)


def test_fresh_until_ttl_then_latest_is_still_served():
    clock = Clock()
    cache = BalanceCache(ttl_seconds=120, timer=clock)
    started, _ = cache.claim(["a"], readable={"a"}, force=False)
    assert [i for i, _ in started] == ["a"]
    cache.complete(state("a", "5"))
    assert cache.fresh(["a"])[0].value == Decimal(5)
    clock.now += 119.9
    assert cache.fresh(["a"]) is not None
    clock.now += 0.2
    assert cache.fresh(["a"]) is None                  # expired: not fresh ...
    assert cache.latest("a").value == Decimal(5)       # ... but the last state is kept
    started, _ = cache.claim(["a"], readable={"a"}, force=False)
    assert len(started) == 1


def test_claim_is_single_flight_and_force_only_bypasses_freshness():
    cache = BalanceCache(ttl_seconds=120, timer=Clock())
    first, waits1 = cache.claim(["a", "b"], readable={"a", "b"}, force=False)
    second, waits2 = cache.claim(["a", "b"], readable={"a", "b"}, force=True)
    assert len(first) == 2 and second == []            # the reads in flight are joined
    assert waits1["a"] is waits2["a"]
    cache.complete(state("a"))
    cache.complete(state("b"))
    assert cache.claim(["a"], readable={"a"}, force=False)[0] == []
    assert len(cache.claim(["a"], readable={"a"}, force=True)[0]) == 1


def test_pinned_states_are_never_read_and_count_as_fresh():
    cache = BalanceCache(ttl_seconds=1, timer=Clock())
    pinned = state("x", status=Status.NOT_CONFIGURED)
    cache.pin(pinned)
    assert cache.claim(["x"], readable=set(), force=True) == ([], {})
    assert cache.fresh(["x"]) == [pinned]
