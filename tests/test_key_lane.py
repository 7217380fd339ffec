"""A `KeyLane` continuing a key another process or worker read: Kraken's call counter carried with
the nonce floor and the last call (`KeyLane.continue_from`), on a hand-moved lane clock (the
carried level's age is measured on the wall clock, as the floors are)."""
from __future__ import annotations

import time

import pytest

from bot.exchanges.lane import KeyLane
from bot.exchanges.limits import HEADROOM, KRAKEN_TIERS
from tests.clock import Clock

STARTER = KRAKEN_TIERS["starter"]  # at most 15, -0.33 per second
DECAY = STARTER.decay_per_second * HEADROOM  # the lane's planned decay


def lane(clock: Clock) -> KeyLane:
    return KeyLane(0.0, counter=STARTER, clock=clock)  # no spacing: only the counter decides


def test_a_carried_level_makes_the_next_call_wait_for_the_counter():
    clock = Clock()
    continued = lane(clock)
    # the previous reader's last call ended 10 s ago at a level that has decayed to 14 since
    continued.continue_from(1_700_000_000_000, time.time() - 10, 14 + 10 * DECAY)
    assert continued.level() == pytest.approx(14, abs=1e-3)
    assert not continued.go_now()                # kept one call below the maximum (15)
    clock.advance(1 / DECAY - 0.02)
    assert not continued.go_now()
    clock.advance(0.04)                          # the counter has decayed by one call
    assert continued.go_now() and not continued.go_now()
    assert continued.next_nonce(5) == 1_700_000_000_001
    fresh = lane(Clock())                        # the same key without the carried level: a burst of 14
    assert all(fresh.go_now() for _ in range(14)) and not fresh.go_now()


def test_the_carried_level_decays_at_the_lanes_rate_from_the_last_call():
    continued = lane(Clock())
    continued.continue_from(None, time.time() - 5, 10.0)
    assert continued.level() == pytest.approx(10 - 5 * DECAY, abs=1e-3)
    assert all(continued.go_now() for _ in range(int(14 - (10 - 5 * DECAY)))) and not continued.go_now()
    old = lane(Clock())
    old.continue_from(None, time.time() - 3600, 14.0)  # an hour ago: nothing left
    assert old.level() == 0.0


def test_continuing_never_lowers_the_lanes_own_or_an_earlier_carried_level():
    clock = Clock()
    busy = lane(clock)
    for _ in range(10):
        assert busy.go_now()
    busy.continue_from(None, time.time(), 2.0)
    assert busy.level() == pytest.approx(10)
    carried = lane(clock)
    carried.continue_from(None, time.time(), 12.0)
    carried.continue_from(None, time.time(), 3.0)
    assert carried.level() == pytest.approx(12, abs=1e-3)
    clock.advance(2)                             # both decay on the lane's clock
    assert busy.level() == pytest.approx(10 - 2 * DECAY)
    assert carried.level() == pytest.approx(12 - 2 * DECAY, abs=1e-3)


def test_a_call_records_the_level_it_leaves_for_the_next_reader():
    clock = Clock()
    reader = lane(clock)
    assert reader.last_level is None
    reader.continue_from(None, time.time(), 5.0)
    assert reader.last_level is None             # carried, not a call of this lane
    assert reader.go_now() and reader.go_now()
    clock.advance(1.0)                           # the response arrives a second later
    reader.completed()
    assert reader.last_level == pytest.approx(7 - DECAY, abs=1e-3)
    assert reader.last_call_at == pytest.approx(time.time(), abs=1.0)


def test_a_lane_without_a_counter_ignores_a_carried_level():
    spaced = KeyLane(0.0, clock=Clock())
    spaced.continue_from(7, None, 14.0)
    assert spaced.level() is None and spaced.go_now()
    spaced.completed()
    assert spaced.last_level is None and spaced.next_nonce(1) == 8
