"""A follower's reload decodes only the shared-state rows that changed (`bot.store.shared`): an
unchanged row comes back as the very value decoded before, a rewritten one is decoded afresh with
its new values, and two databases in one process never share decoded rows."""
from __future__ import annotations

from decimal import Decimal as D

from bot.core.state import Status
from bot.store import BalanceStore, default_database_url
from bot.store.truth import TruthStore
from tests.test_shared_store import state


def test_unchanged_rows_are_not_decoded_again(store, monkeypatch):
    from bot.store import shared

    truth = TruthStore(store)
    truth.publish([state(account="alice:kraken"), state(account="bob:kraken", value="7.00")], "host:1/a")
    first = {r.state.account_id: r for r in truth.states()}
    decoded = []
    original = shared._state_of
    monkeypatch.setattr(shared, "_state_of", lambda row: decoded.append(row.account_id) or original(row))
    again = {r.state.account_id: r for r in truth.states()}
    assert decoded == [] and all(again[a] is first[a] for a in first)  # nothing new: nothing decoded

    truth.publish([state(account="bob:kraken", value="8.50", status=Status.STALE, error="RequestTimeout: x",
                         error_class="RequestTimeout")], "host:2/b")
    third = {r.state.account_id: r for r in truth.states()}
    assert decoded == ["bob:kraken"]
    assert third["alice:kraken"] is first["alice:kraken"]
    bob = third["bob:kraken"]
    assert (bob.version, bob.reader, bob.state.value, bob.state.status) == (2, "host:2/b", D("8.50"), Status.STALE)
    assert bob.state.error_class == "RequestTimeout"


def test_two_databases_keep_their_own_rows(tmp_path):
    one = BalanceStore(default_database_url(tmp_path / "one"))
    two = BalanceStore(default_database_url(tmp_path / "two"))
    try:
        written = TruthStore(one).publish([state(value="1.00")], "host:1/a")
        TruthStore(two).publish([state(value="2.00")], "host:1/a")
        assert TruthStore(one).states()[0].updated_at == written
        assert TruthStore(one).states()[0].state.value == D("1.00")
        assert TruthStore(two).states()[0].state.value == D("2.00")
    finally:
        one.close()
        two.close()
