"""The history as columns (`snapshot_history_columns`, `recent_snapshot_columns`) and its JSON
text (`web.payloads.series_body`), per backend: the same values as the `Snapshot` queries with
`snapshot_cash`, and byte for byte the body that `series_json` + ``json.dumps`` give, over mixed
data (currency changes, zero and tiny balances, several sources, snapshots with and without
per-asset detail or a cash row, instants with and without microseconds, awkward account ids).
"""
from __future__ import annotations

import json
import random
from datetime import timedelta
from decimal import Decimal as D

import pytest

from bot.core.timefmt import iso
from bot.store import AssetRow
from tests.test_store import MIN, T0, snap
from web.payloads import series_body, series_json

SOURCES = ("initial_connection", "account_sync", "manual_sync", "scheduled_sync")
ACCOUNT = "al%ice\"é:kraken"  # a quote, a % (the row template) and a non-ASCII letter


@pytest.fixture
def mixed(store):
    rng = random.Random(1515)
    items = []
    for i in range(300):
        balance = D(rng.choice(["0", "0.00", "1", "12.345678901234567890", "1E-320",
                                str(rng.randrange(10 ** 6)) + ".01"]))
        currency = "EUR" if 120 <= i < 130 or i == 250 else "USD"
        kind = rng.randrange(3)  # per-asset detail: with a cash row, without one, none at all
        assets = ((AssetRow(currency, balance / 4, D(1), balance / 4), AssetRow("BTC", D("0.1"), None, None)) if kind == 0
                  else (AssetRow("BTC", D("0.1"), D(3), balance),) if kind == 1 else ())
        at = T0 + i * MIN + timedelta(microseconds=rng.choice([0, 0, 1, 250000, 999999]))
        items.append(snap(ACCOUNT, str(balance), at, source=rng.choice(SOURCES), currency=currency, assets=assets))
    items.append(snap("bob:okx", "5", T0))  # another account's rows never enter the chain
    store.add_snapshots(items)
    return store


def rows_of(snapshots, cash) -> list[tuple]:
    return [(s.id, s.balance, s.currency, s.source, iso(s.captured_at), iso(s.created_at), s.change_amount,
             s.change_percent, cash.get(s.id)) for s in snapshots]


def rows_of_columns(c) -> list[tuple]:
    return list(zip(c.ids, c.balances, c.currencies, c.sources, c.captured_at, c.created_at, c.change_amounts,
                    c.change_percents, c.cash))


def reference_body(store, snapshots, paper: bool, head: dict) -> bytes:
    """What the endpoints wrote before `series_body`: dicts per snapshot, then json.dumps."""
    cash = store.snapshot_cash([s.id for s in snapshots])
    return json.dumps({**head, **series_json(snapshots, cash, paper, "USD")}, separators=(",", ":")).encode()


@pytest.mark.parametrize("source", [None, "scheduled_sync", "initial_connection"])
def test_history_columns_are_the_snapshots_with_their_cash(mixed, source):
    start, end = T0 + 17 * MIN, T0 + 280 * MIN
    snapshots = mixed.snapshot_history(ACCOUNT, start, end, source)
    columns = mixed.snapshot_history_columns(ACCOUNT, start, end, source)
    expected = rows_of(snapshots, mixed.snapshot_cash([s.id for s in snapshots]))
    assert len(columns) == len(snapshots) > 10
    assert rows_of_columns(columns) == expected
    cash = [row[-1] for row in expected]
    assert None in cash and D(0) in cash and any(c not in (None, D(0)) for c in cash)  # all three kinds seen
    assert any(len(row[4]) == 27 for row in expected) and any(len(row[4]) == 20 for row in expected)


@pytest.mark.parametrize("kind", ["cash row", "no cash row", "no detail"])
def test_history_columns_of_one_kind_of_detail_throughout(store, kind):
    items = []
    for i in range(40):
        balance = D(i * 3) + D("0.5")
        assets = ((AssetRow("USD", balance / 2, D(1), balance / 2),) if kind == "cash row"
                  else (AssetRow("USDT", balance, D(1), balance),) if kind == "no cash row" else ())
        items.append(snap("carol:kraken", str(balance), T0 + i * MIN, assets=assets))
    store.add_snapshots(items)
    snapshots = store.snapshot_history("carol:kraken", T0, T0 + 60 * MIN)
    columns = store.snapshot_history_columns("carol:kraken", T0, T0 + 60 * MIN)
    assert rows_of_columns(columns) == rows_of(snapshots, store.snapshot_cash([s.id for s in snapshots]))
    assert set(columns.cash) == ({D(0)} if kind == "no cash row" else {None} if kind == "no detail"
                                 else set(columns.cash) - {None, D(0)})
    assert series_body(columns, False, "USD", {}) == reference_body(store, snapshots, False, {})


@pytest.mark.parametrize("paper", [False, True])
@pytest.mark.parametrize("source", [None, "account_sync"])
def test_series_body_is_the_json_of_series_json_byte_for_byte(mixed, source, paper):
    start, end = T0 - MIN, T0 + 400 * MIN
    head = {"account_id": ACCOUNT, "start_date": iso(start), "end_date": iso(end), "source": source}
    snapshots = mixed.snapshot_history(ACCOUNT, start, end, source)
    body = series_body(mixed.snapshot_history_columns(ACCOUNT, start, end, source), paper, "USD", head)
    assert body == reference_body(mixed, snapshots, paper, head)
    parsed = json.loads(body)
    percents = [s["change_percent"] for s in parsed["snapshots"]]
    assert parsed["total_count"] == len(snapshots) and None in percents
    if source is None:
        assert float("inf") in percents  # 1 after 1E-320: json.dumps writes Infinity, and so does series_body


@pytest.mark.parametrize("limit", [1, 7, 100])
def test_recent_columns_newest_first_match_recent_snapshots(mixed, limit):
    head = {"account_id": ACCOUNT, "source": None, "limit": limit}
    snapshots = mixed.recent_snapshots(ACCOUNT, limit)
    columns = mixed.recent_snapshot_columns(ACCOUNT, limit)
    assert list(reversed(rows_of_columns(columns))) == rows_of(snapshots, mixed.snapshot_cash([s.id for s in snapshots]))
    body = series_body(columns, False, "USD", head, newest_first=True)
    assert body == reference_body(mixed, snapshots, False, head)
    assert json.loads(body)["snapshots"][0]["change_amount"] is not None or snapshots[0].change_amount is None


def test_an_empty_range_and_an_unknown_account(mixed):
    for account in (ACCOUNT, "nobody:kraken"):
        columns = mixed.snapshot_history_columns(account, T0 - 10 * MIN, T0 - MIN)
        assert len(columns) == 0
        head = {"account_id": account, "source": None}
        assert series_body(columns, True, "EUR", head) == reference_body(mixed, [], True, head).replace(
            b'"currency":"USD"', b'"currency":"EUR"')
        assert json.loads(series_body(columns, True, "EUR", head))["currency"] == "EUR"
    with pytest.raises(ValueError):
        mixed.snapshot_history_columns(ACCOUNT, T0 + MIN, T0)
    with pytest.raises(ValueError):
        mixed.recent_snapshot_columns(ACCOUNT, 101)


def test_stored_instants_of_another_form_go_through_datetime():
    from bot.store.timeline import _iso_texts

    assert _iso_texts(("2025-03-01 12:00:00.000000+00:00", "2025-03-01 12:00:00.000250+00:00")) == (
        "2025-03-01T12:00:00Z", "2025-03-01T12:00:00.000250Z")
    assert _iso_texts(("2025-03-01 12:00:00.000000+00:00", "2025-03-01 13:30:00.5+01:00")) == (
        "2025-03-01T12:00:00Z", "2025-03-01T12:30:00.500000Z")


def test_the_stored_cash_is_the_rule_over_each_snapshots_asset_rows(mixed):
    """`snapshot_cash` and the columns read the cash stored with each snapshot: it must be what
    the asset rows say (the rule `tests.test_snapshot_cash.reference` states without the column)."""
    from tests.test_snapshot_cash import reference

    snapshots = mixed.snapshot_history(ACCOUNT, T0 - MIN, T0 + 400 * MIN)
    expected = {s.id: reference(mixed, s.id, s.currency) for s in snapshots}
    columns = mixed.snapshot_history_columns(ACCOUNT, T0 - MIN, T0 + 400 * MIN)
    assert dict(zip(columns.ids, columns.cash)) == expected
    assert mixed.snapshot_cash(list(expected)) == {i: c for i, c in expected.items() if c is not None}
    assert [str(c) for c in columns.cash] == [str(expected[i]) for i in columns.ids]
