"""One manager holding every kind of account state, for the read-model tests (terminal, JSON,
API, dashboard, metrics, alerts): real paper accounts, a loopback FakeKraken through ccxt, a real
SQLite history store and the real monitoring system.

    owner   account           state                                   value
    master  coinbase (paper)  ok                                      1,234.56
    alice   coinbase (paper)  ok                                        250.00
            kraken (fake)     ok                                        750.00
    bob     kraken (fake)     stale: read, then HTTP 500s             2,500.00 (last good)
            coinbase (paper)  ok, really empty (USD 0)                    0.00
    carol   kraken (fake)     error: the key is refused                unknown
            coinbase (paper)  ok                                        100.00
    dave    binance           not_configured (no credentials)          unknown
    erin    kraken (paper)    ok, holds only FOO, which has no price   unknown
    frank   coinbase (paper)  ok                                         40.00
            kraken (paper)    pending: never read                      unknown

Alerts: ``low_balance`` 50, so a real 0 (bob's coinbase) and 40 (frank's) are low; erin's
unknown value must never be.
"""
from __future__ import annotations

from contextlib import contextmanager
from decimal import Decimal as D

from bot.monitoring_system import get_monitoring_system
from bot.views.metrics import metrics_for
from tests.conftest import FAST_SETTINGS, broker_on, no_spacing
from tests.fakes import FakeKraken

LOW_BALANCE = 50

# user -> (total as the JSON number, partial); ranked = by total, highest first, unknown last, ties by id
TOTALS = {"alice": (1000.0, False), "bob": (2500.0, True), "carol": (100.0, True), "dave": (None, True),
          "erin": (None, True), "frank": (40.0, True)}
RANKED = ["bob", "alice", "carol", "frank", "dave", "erin"]
CAPITAL, USERS, COUNTED, AVERAGE = 3640.0, 6, 4, 910.0
EXACT_CAPITAL = D("3640.00")
STATUSES = {"master:coinbase": "ok", "alice:coinbase": "ok", "alice:kraken": "ok", "bob:kraken": "stale",
            "bob:coinbase": "ok", "carol:kraken": "error", "carol:coinbase": "ok", "dave:binance": "not_configured",
            "erin:kraken": "ok", "frank:coinbase": "ok", "frank:kraken": "pending"}
UNKNOWN_ACCOUNTS = ["carol:kraken", "dave:binance", "erin:kraken", "frank:kraken"]


def paper(**balances) -> dict:
    return {"paper": True, "balances": {k: str(v) for k, v in balances.items()}}


@contextmanager
def mixed_states(config, managers):
    """Yield (manager, monitoring system) in the states of the module docstring."""
    with FakeKraken() as kraken:
        alice, bob, carol = (kraken.add_account({"USD": usd}) for usd in ("750", "2500", "5"))
        kraken.inject("invalid_key", api_key=carol["api_key"], count=100)
        config.settings(**FAST_SETTINGS, rate_limits=no_spacing("kraken"), alerts={"low_balance": LOW_BALANCE})
        config.master({"coinbase": paper(USD="1234.56")})
        config.user("alice", {"coinbase": paper(USD=250), "kraken": broker_on(kraken, alice)}, name="Alice")
        config.user("bob", {"kraken": broker_on(kraken, bob), "coinbase": paper(USD=0)}, name="Bob")
        config.user("carol", {"kraken": broker_on(kraken, carol), "coinbase": paper(USD=100)}, name="Carol")
        config.user("dave", {"binance": {"api_key_env": "DAVE_KEY", "api_secret_env": "DAVE_SECRET"}}, name="Dave")
        config.user("erin", {"kraken": paper(FOO=3)}, name="Erin")
        config.user("frank", {"coinbase": paper(USD=40), "kraken": paper(USD=60)}, name="Frank")
        manager = config.manager()
        managers.append(manager)
        system = get_monitoring_system(manager)
        metrics_for(manager).watch_alerts(system)           # before the reads: /metrics counts every one
        for owner in ("master", "alice", "bob", "carol", "dave", "erin"):
            manager.refresh(owner=owner)
        kraken.inject("http_500", api_key=bob["api_key"], count=100)
        manager.refresh(owner="bob")                        # bob's kraken: the last good value, stale
        assert manager.get_user_balance("frank", "coinbase") == D(40)   # reads frank's coinbase only
        states = {s.account_id: s.status.value for s in manager.current_states()}
        assert states == {k: v for k, v in STATUSES.items() if v != "pending"}, states
        assert system.flush()
        yield manager, system
