"""The store's read paths behind the snapshot API's split and source filter, on SQLite and PostgreSQL."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal as D

import pytest

from bot.store import FILTER_SOURCES, SOURCES, AssetRow, SnapshotIn

NOW = dt.datetime(2026, 1, 21, 16, 0, tzinfo=dt.timezone.utc)


def snap(balance, assets=(), currency="USD", minutes=0, source="account_sync"):
    return SnapshotIn("alice:kraken", "alice", "kraken", D(balance), currency, source,
                      NOW + dt.timedelta(minutes=minutes), tuple(assets))


def test_snapshot_cash_is_the_holding_of_the_snapshot_currency(store):
    big = D("123456789012345678901234567890.123456789")
    ids = store.add_snapshots([
        snap("1000.50", [AssetRow("USD", D("100.25"), D(1), D("100.25")), AssetRow("BTC", D("0.01"), D(90025), D("900.25"))]),
        snap("900", [AssetRow("BTC", D("0.01"), D(90000), D("900"))], minutes=1),       # no cash at all
        snap("5", minutes=2),                                                            # no per-asset detail
        snap("80", [AssetRow("EUR", D("80"), D(1), D("80")), AssetRow("USD", D("3"), None, None)],
             currency="EUR", minutes=3),                                                 # cash is the EUR row
        snap(big, [AssetRow("USD", big, D(1), big)], minutes=4),
    ])
    cash = store.snapshot_cash(ids + [10_000])
    assert cash == {ids[0]: D("100.25"), ids[1]: D(0), ids[3]: D("80"), ids[4]: big}
    assert store.snapshot_cash([]) == {}
    with pytest.raises(ValueError):
        store.snapshot_cash(["1"])


def test_holdings_sync_is_a_filter_value_never_written(store):
    assert FILTER_SOURCES == SOURCES + ("holdings_sync",)
    store.add_snapshots([snap("1"), snap("2", minutes=1, source="manual_sync")])
    assert store.recent_snapshots("alice:kraken", 10, "holdings_sync") == []
    assert store.snapshot_history("alice:kraken", NOW, NOW + dt.timedelta(hours=1), "holdings_sync") == []
    assert [s.balance for s in store.recent_snapshots("alice:kraken", 10, "manual_sync")] == [D(2)]
    with pytest.raises(ValueError):
        store.recent_snapshots("alice:kraken", 10, "cron")
    with pytest.raises(ValueError):  # the schema's check constraint: not a source to write
        snap("3", source="holdings_sync")
