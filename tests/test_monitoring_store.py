"""The store queries behind the alert rules, on SQLite and PostgreSQL (fixtures in tests/store_fixtures.py).

`open_alerts` derives the open alerts from the alert log; `balances_since` loads the drop window.
"""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal as D

from bot.store import AlertIn
from tests.test_store import MIN, T0, snap


def alert(type_="BALANCE_LOW", state="firing", user="alice", broker="kraken", at=T0, value="90"):
    return AlertIn(type_, state, "warning", user, broker, D(value), D(100), f"{type_} {state}", at)


def test_open_alerts_are_the_alerts_whose_newest_row_is_firing(store):
    assert store.open_alerts() == []
    store.add_alert(alert(at=T0))                                    # alice kraken LOW: episode 1
    store.add_alert(alert(at=T0 + MIN))                              # repeat
    store.add_alert(alert(state="resolved", at=T0 + 2 * MIN))
    third = store.add_alert(alert(at=T0 + 3 * MIN))                  # episode 2 begins
    last = store.add_alert(alert(at=T0 + 4 * MIN, value="80"))       # its repeat: the newest row
    store.add_alert(alert(type_="BALANCE_DROP", broker=None, at=T0))  # alice total DROP: open
    store.add_alert(alert(type_="BALANCE_LOW", user="bob", at=T0))
    store.add_alert(alert(type_="BALANCE_LOW", user="bob", state="resolved", at=T0 + MIN))  # closed
    store.add_alert(alert(type_="BALANCE_LOW", broker=None, at=T0 + 5 * MIN))  # total, not the account
    found = {(a.type, a.user_id, a.broker): (a.id, a.value, began) for a, began in store.open_alerts()}
    assert found == {
        ("BALANCE_LOW", "alice", "kraken"): (last, D("80"), T0 + 3 * MIN),
        ("BALANCE_DROP", "alice", None): (found[("BALANCE_DROP", "alice", None)][0], D("90"), T0),
        ("BALANCE_LOW", "alice", None): (found[("BALANCE_LOW", "alice", None)][0], D("90"), T0 + 5 * MIN),
    }
    assert third < last


def test_balances_since_gives_the_opening_balance_and_the_window(store):
    store.add_snapshots([snap("alice:kraken", "100", T0 - 3 * MIN), snap("alice:kraken", "110", T0 - MIN),
                         snap("alice:kraken", "90", T0 + MIN), snap("alice:kraken", "95", T0 + 2 * MIN),
                         snap("bob:kraken", "50", T0 - 2 * MIN),            # before the window only
                         snap("carol:okx", "7", T0), snap("carol:okx", "8", T0 + MIN)])  # inside only
    found = store.balances_since(T0)
    assert found == {
        "alice:kraken": [(T0 - MIN, D("110")), (T0 + MIN, D("90")), (T0 + 2 * MIN, D("95"))],
        "bob:kraken": [(T0 - 2 * MIN, D("50"))],
        "carol:okx": [(T0, D("7")), (T0 + MIN, D("8"))],
    }
    assert store.balances_since(T0 + timedelta(days=1))["alice:kraken"] == [(T0 + 2 * MIN, D("95"))]
