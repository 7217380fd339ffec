"""The history query (`snapshot_history`, `recent_snapshots`), per backend: its column-by-column
build gives exactly what a plain row-by-row rule gives, over mixed data (currency changes, zero
balances, several sources, a snapshot before the range), filtered and not.
"""
from __future__ import annotations

import random
from datetime import timedelta
from decimal import Decimal as D

import pytest

from bot.core.money import MONEY
from bot.store import Snapshot
from tests.test_store import MIN, T0, snap

SOURCES = ("initial_connection", "account_sync", "manual_sync", "scheduled_sync")


def expected_chain(snapshots: list[Snapshot], previous: Snapshot | None) -> list[tuple]:
    """(id, balance, currency, source, change_amount, change_percent) by the rule, one row at a time."""
    out = []
    for s in snapshots:
        amount = percent = None
        if previous is not None and previous.currency == s.currency:
            amount = MONEY.subtract(s.balance, previous.balance)
            percent = float(amount) / float(previous.balance) * 100 if float(previous.balance) else None
        out.append((s.id, s.balance, s.currency, s.source, amount, percent))
        previous = s
    return out


def figures(snapshots: list[Snapshot]) -> list[tuple]:
    return [(s.id, s.balance, s.currency, s.source, s.change_amount, s.change_percent) for s in snapshots]


@pytest.fixture
def mixed(store):
    rng = random.Random(15)
    items = []
    for i in range(400):
        balance = rng.choice(["0", "0.00", "1", "12.345678901234567890", str(rng.randrange(10 ** 6)) + ".01"])
        currency = "EUR" if 150 <= i < 160 or i == 300 else "USD"
        items.append(snap("alice:kraken", balance, T0 + i * MIN, source=rng.choice(SOURCES), currency=currency))
    items.append(snap("bob:okx", "5", T0))  # another account's rows never enter alice's chain
    store.add_snapshots(items)
    return store


@pytest.mark.parametrize("source", [None, "scheduled_sync", "initial_connection"])
def test_history_changes_follow_the_rule(mixed, source):
    everything = mixed.snapshot_history("alice:kraken", T0, T0 + 400 * MIN, source)
    assert everything and all(isinstance(s, Snapshot) for s in everything)
    assert all(s.captured_at.tzinfo is not None and s.captured_at.utcoffset() == timedelta(0) for s in everything)
    start = T0 + 37 * MIN
    inside = mixed.snapshot_history("alice:kraken", start, T0 + 380 * MIN, source)
    before = [s for s in everything if s.captured_at < start]
    assert figures(inside) == expected_chain([s for s in everything if start <= s.captured_at <= T0 + 380 * MIN],
                                             before[-1] if before else None)
    assert figures(everything) == expected_chain(everything, None)
    if source is None:
        assert len(everything) == 400 and {s.currency for s in everything} == {"USD", "EUR"}
        zero_after = [s for s, p in zip(everything[1:], everything) if p.balance == 0 and p.currency == s.currency]
        assert zero_after and all(s.change_percent is None and s.change_amount is not None for s in zero_after)


def test_recent_matches_the_tail_of_the_history(mixed):
    everything = mixed.snapshot_history("alice:kraken", T0, T0 + 400 * MIN)
    recent = mixed.recent_snapshots("alice:kraken", 100)
    assert figures(list(reversed(recent))) == figures(everything[-100:])
    assert mixed.snapshot_history("alice:kraken", T0 - 10 * MIN, T0 - MIN) == []
    one = mixed.snapshot_history("alice:kraken", T0, T0)
    assert len(one) == 1 and one[0].change_amount is None and one[0].balance == everything[0].balance == D(
        everything[0].balance)
