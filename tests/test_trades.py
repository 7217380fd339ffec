"""The trade journal: record_trade's validation, the per-user store queries (SQLite and
PostgreSQL, with the fixtures of store_fixtures.py) and the figures of bot.history.journal."""
from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest

from bot.store import TradeIn
from bot.history.journal import EMPTY, day_bounds, load_sample_trades, make_trade, trade_stats

D = Decimal
UTC = dt.timezone.utc
NOW = dt.datetime(2026, 1, 21, 16, 0, tzinfo=UTC)


def trade(user="alice", pnl=None, at=NOW, side="sell", broker="kraken", amount="1", price="100"):
    return TradeIn(user, broker, "BTC/USD", side, D(amount), D(price), None if pnl is None else D(pnl), None, at)


# --- store queries (both databases) ---------------------------------------------------------------

def test_per_user_queries(store):
    assert store.latest_trade_id() is None
    assert store.trade_counts() == {} and store.closed_trades() == [] and store.recent_trades_by_user() == {}
    ids = [store.add_trade(trade("alice", "0.10", NOW - dt.timedelta(hours=h))) for h in range(4)]
    ids.append(store.add_trade(trade("bob", None, NOW)))
    ids.append(store.add_trade(trade("bob", "-2.5", NOW - dt.timedelta(days=1))))
    assert store.latest_trade_id() == max(ids)
    assert store.trade_counts() == {"alice": 4, "bob": 2}
    assert store.trade_counts(["bob", "carol"]) == {"bob": 2}
    closed = sorted(store.closed_trades())
    assert [(u, p) for u, p, _ in closed] == [("alice", D("0.10"))] * 4 + [("bob", D("-2.5"))]
    assert all(isinstance(p, Decimal) and at.tzinfo is not None for _, p, at in closed)
    recent = store.recent_trades_by_user(limit=2)
    assert [t.id for t in recent["alice"]] == ids[:2]  # newest first
    assert [t.id for t in recent["bob"]] == [ids[4], ids[5]]
    assert list(store.recent_trades_by_user(["bob"], limit=1)) == ["bob"]
    with pytest.raises(ValueError):
        store.recent_trades_by_user(limit=0)


def test_trade_stats(store):
    day_start, _ = day_bounds("UTC", NOW)
    store.add_trade(trade("alice", None, NOW - dt.timedelta(hours=1), side="buy"))           # open: not closed
    store.add_trade(trade("alice", "10.00", NOW - dt.timedelta(hours=2)))                    # today, win
    store.add_trade(trade("alice", "-4.00", day_start - dt.timedelta(seconds=1)))            # yesterday, loss
    store.add_trade(trade("alice", "0", NOW - dt.timedelta(minutes=5)))                      # today, not a win
    store.add_trade(trade("bob", None, NOW, side="buy"))
    stats = trade_stats(store, "UTC", recent_limit=3, now=NOW)
    alice = stats["alice"]
    assert (alice.total_trades, alice.closed_trades, alice.winning_trades) == (4, 3, 1)
    assert alice.win_rate == pytest.approx(1 / 3)
    assert alice.daily_pnl == D("10.00") and alice.total_pnl == D("6.00")
    assert [t.pnl for t in alice.recent] == [D("0"), None, D("10.00")]
    bob = stats["bob"]
    assert bob.total_trades == 1 and bob.win_rate is None and bob.daily_pnl is None and bob.total_pnl is None
    assert "carol" not in stats and EMPTY.win_rate is None


def test_daily_pnl_follows_the_configured_timezone(store):
    # 23:30 UTC on the 20th is already the 21st in Tokyo (UTC+9), not in New York.
    store.add_trade(trade("alice", "5", dt.datetime(2026, 1, 20, 23, 30, tzinfo=UTC)))
    now = dt.datetime(2026, 1, 21, 1, 0, tzinfo=UTC)
    assert trade_stats(store, "Asia/Tokyo", now=now)["alice"].daily_pnl == D("5")
    assert trade_stats(store, "UTC", now=now)["alice"].daily_pnl is None
    assert trade_stats(store, "America/New_York", now=now)["alice"].daily_pnl == D("5")  # still the 20th there


# --- validation -------------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, message", [
    ({"side": "hold"}, "side"),
    ({"amount": 0}, "amount"),
    ({"amount": "-1"}, "amount"),
    ({"price": 1.5}, "price"),            # floats are inexact: refused
    ({"price": "abc"}, "price"),
    ({"pnl": float("nan")}, "pnl"),
    ({"timestamp": dt.datetime(2026, 1, 1)}, "executed_at"),  # naive
    ({"timestamp": "yesterday"}, "timestamp"),
])
def test_make_trade_refuses_bad_values(kwargs, message):
    args = {"user_id": "alice", "broker": "kraken", "symbol": "BTC/USD", "side": "buy", "amount": "1", "price": "2"}
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        make_trade(**args)


def test_make_trade_accepts_decimal_int_string_and_epoch():
    t = make_trade("alice", "kraken", "BTC/USD", "SELL", D("0.5"), 20000, pnl="-1.25", fee=D("0.01"), timestamp=0)
    assert (t.side, t.amount, t.price, t.pnl, t.fee) == ("sell", D("0.5"), D(20000), D("-1.25"), D("0.01"))
    assert t.executed_at == dt.datetime(1970, 1, 1, tzinfo=UTC)


def test_record_trade_on_the_manager(config, managers):
    config.settings(database_url=f"sqlite:///{config.root / 'h.sqlite3'}")
    config.user("alice", {"kraken": {"paper": True, "balances": {"USD": "1"}}})
    manager = config.manager()
    managers.append(manager)
    seen = []
    manager.add_trade_listener(lambda trade_id, t: seen.append((trade_id, t.user_id)))
    trade_id = manager.record_trade("alice", "kraken", "BTC/USD", "buy", D("0.1"), D("50000"), fee=D("1"))
    assert seen == [(trade_id, "alice")]
    [stored] = manager.history.store.trades("alice")
    assert (stored.id, stored.amount, stored.pnl, stored.fee) == (trade_id, D("0.1"), None, D("1"))
    with pytest.raises(KeyError):
        manager.record_trade("mallory", "kraken", "BTC/USD", "buy", 1, 1)
    with pytest.raises(ValueError):
        manager.record_trade("alice", "kraken", "BTC/USD", "buy", -1, 1)
    assert len(manager.history.store.trades("alice")) == 1 and len(seen) == 1


def test_sample_trades_fill_only_an_empty_journal(store, tmp_path):
    path = tmp_path / "sample.json"
    path.write_text(json.dumps({"trades": [
        {"user_id": "alice", "broker": "kraken", "symbol": "BTC/USD", "side": "sell", "amount": "1",
         "price": "2", "pnl": "3", "fee": None, "hours_ago": 1},
        {"user_id": "ghost", "broker": "kraken", "symbol": "BTC/USD", "side": "buy", "amount": "1", "price": "2"},
    ]}))
    assert load_sample_trades(store, path, ["alice"], now=NOW) == 1
    assert load_sample_trades(store, path, ["alice"], now=NOW) == 0
    [t] = store.trades("alice")
    assert t.executed_at == NOW - dt.timedelta(hours=1) and t.pnl == D(3)


def test_the_example_sample_trades_load(tmp_path):
    from pathlib import Path

    from bot.store import BalanceStore
    root = Path(__file__).resolve().parents[1] / "config"
    with BalanceStore(f"sqlite:///{tmp_path / 's.sqlite3'}") as s:
        assert load_sample_trades(s, root / "sample_trades.json", ["alice", "bob"]) == 8
        assert s.trade_counts() == {"alice": 4, "bob": 4}
