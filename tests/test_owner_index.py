"""The summaries from the owner index (`bot.app.summaries`): the same figures as the read model
built from every state (the one rule), kept current by the reads, and the reads that are due
started (and only those) — against a loopback fake Kraken counting its private calls, with a
controllable clock for the TTL.
"""
from __future__ import annotations

from decimal import Decimal as D

from bot.core.state import Status
from bot.multi_account_broker_manager import MultiAccountBrokerManager
from bot.views.model import build_read_model, user_balance_summary
from tests.clock import Clock
from tests.conftest import FAST_SETTINGS, broker_on, no_spacing


def private_calls(kraken) -> int:
    return sum(1 for call in kraken.calls if call.kind == "private")


def setup(config, kraken, clock=None):
    creds = {}
    config.settings(**FAST_SETTINGS, rate_limits=no_spacing("kraken"))
    config.master({"kraken": {"paper": True, "balances": {"USD": "5"}}})
    for user, usd in (("alice", "100"), ("bob", "300"), ("carol", "200")):
        creds[user] = kraken.add_account({"USD": usd})
        config.user(user, {"kraken": broker_on(kraken, creds[user]),
                           "paper": {"paper": True, "balances": {"USD": "1"}}})
    config.user("dave", {"okx": {"api_key_env": "DAVE_KEY", "api_secret_env": "DAVE_SECRET",
                                 "passphrase_env": "DAVE_PASS"}})   # not configured: never read
    config.user("erin", {"kraken": {"paper": True, "balances": {"USD": "9"}}}, enabled=False)
    manager = MultiAccountBrokerManager(config.load(), clock=clock or Clock(), history=False)
    return manager, creds


def test_the_index_agrees_with_the_read_model_of_every_state(config, kraken, managers):
    manager, creds = setup(config, kraken)
    managers.append(manager)
    summary = manager.get_user_balance_summary()   # never-read accounts are waited for
    assert summary == user_balance_summary(build_read_model(manager))
    assert [u["user_id"] for u in summary["users"]] == ["bob", "carol", "alice", "dave"]
    assert summary["total_capital"] == D("603") and summary["users_counted"] == 3 and summary["partial"] is True
    assert manager.get_all_balances() == {"master": {"kraken": D(5)},
                                          "users": {"alice": {"kraken": D(100), "paper": D(1)},
                                                    "bob": {"kraken": D(300), "paper": D(1)},
                                                    "carol": {"kraken": D(200), "paper": D(1)},
                                                    "dave": {"okx": None}}}
    kraken.set_balance(creds["alice"]["api_key"], "USD", "1000")
    kraken.inject("invalid_key", api_key=creds["bob"]["api_key"], count=5)
    manager.refresh(force=True)
    summary = manager.get_user_balance_summary()
    assert summary == user_balance_summary(build_read_model(manager))
    assert [u["user_id"] for u in summary["users"]] == ["alice", "bob", "carol", "dave"]
    bob = next(u for u in summary["users"] if u["user_id"] == "bob")
    assert bob["total"] == D(301) and bob["partial"] is True   # stale: the last good value, marked
    balances = manager.get_all_balances()
    assert balances["users"]["alice"] == {"kraken": D(1000), "paper": D(1)}
    balances["users"]["alice"]["kraken"] = D(0)      # the caller's copy: the index is not changed
    balances["master"].clear()
    again = manager.get_all_balances()
    assert again["users"]["alice"]["kraken"] == D(1000) and again["master"] == {"kraken": D(5)}
    kraken.set_balance(creds["alice"]["api_key"], "USD", "50")
    manager.refresh(force=True)
    assert manager.get_all_balances()["users"]["alice"]["kraken"] == D(50)   # before any summary: its own dirty set
    summary = manager.get_user_balance_summary()
    assert summary == user_balance_summary(build_read_model(manager))
    assert next(u for u in summary["users"] if u["user_id"] == "alice")["total"] == D(51)
    assert manager.get_all_balances()["users"]["carol"] == {"kraken": D(200), "paper": D(1)}


def test_due_reads_are_started_once_and_fresh_ones_never(config, kraken, managers):
    clock = Clock()
    manager, creds = setup(config, kraken, clock)
    managers.append(manager)
    manager.get_all_balances()
    first = private_calls(kraken)
    assert first == 3
    for _ in range(50):                              # within the TTL: no exchange call at all
        manager.get_user_balance_summary()
        manager.get_all_balances()
    assert private_calls(kraken) == first
    kraken.set_balance(creds["carol"]["api_key"], "USD", "700")
    clock.advance(121)                               # past the 120 s TTL: due
    manager.get_all_balances()                       # starts the reads that are due (not waited for)
    manager.refresh(force=False)                     # joins them (or finds them fresh): no second read
    assert private_calls(kraken) == first + 3        # one read each, not one per call
    for _ in range(20):
        manager.get_all_balances()
    assert private_calls(kraken) == first + 3
    assert manager.get_all_balances()["users"]["carol"]["kraken"] == D(700)
    summary = manager.get_user_balance_summary()
    assert summary["users"][0] == {"user_id": "carol", "total": D(701), "brokers": {"kraken": D(700), "paper": D(1)},
                                   "partial": False}


def test_a_first_read_that_fails_is_unknown_not_zero(config, kraken, managers):
    manager, creds = setup(config, kraken)
    managers.append(manager)
    kraken.inject("invalid_key", api_key=creds["carol"]["api_key"], count=5)
    balances = manager.get_all_balances()
    assert balances["users"]["carol"] == {"kraken": None, "paper": D(1)}
    summary = manager.get_user_balance_summary()
    carol = next(u for u in summary["users"] if u["user_id"] == "carol")
    assert carol["total"] == D(1) and carol["partial"] is True
    state = next(s for s in manager.current_states() if s.account_id == "carol:kraken")
    assert state.status is Status.ERROR and state.value is None
