"""Each snapshot's cash stored with it (``snapshots.cash``, migration 0007), on SQLite and PostgreSQL.

The rule, on both the write path (`bot.store.snapshots.cash_of`) and the migration's backfill:
the value of the snapshot's asset row named like its currency; 0 when it has asset rows but
none such, or that row has no value; NULL (None) when it has no asset rows at all. `reference`
states it over the asset rows as the store returns them, independently of the stored column.
"""
from __future__ import annotations

from decimal import Decimal as D

from alembic import command
from sqlalchemy import inspect, text

from bot.store import AssetRow, BalanceStore, bulk
from bot.store.engine import create_store_engine, writer
from bot.store.migrate import alembic_config, current_revision, head_revision
from bot.store.schema import snapshot_assets, snapshots
from bot.store.snapshots import cash_of
from tests.test_store import MIN, T0, snap

USD_ROW = AssetRow("USD", D("12.50"), D(1), D("12.50"))
BTC_ROW = AssetRow("BTC", D("0.1"), D("60000"), D("6000.0"))

# (label, currency, asset rows, expected cash): every kind the rule tells apart.
CASES = (
    ("cash row", "USD", (USD_ROW, BTC_ROW), D("12.50")),
    ("only the cash row", "USD", (USD_ROW,), D("12.50")),
    ("no cash row", "USD", (BTC_ROW, AssetRow("USDT", D(5), D(1), D(5))), D(0)),
    ("unpriced cash row", "USD", (AssetRow("USD", D(3), None, None), BTC_ROW), D(0)),
    ("zero with a scale", "USD", (AssetRow("USD", D("0.00"), D(1), D("0.00")),), D("0.00")),
    ("other currency", "EUR", (USD_ROW, AssetRow("EUR", D("7.125"), D(1), D("7.125"))), D("7.125")),
    ("tiny", "USD", (AssetRow("USD", D("1E-12"), D(1), D("1E-12")),), D("1E-12")),
    ("no detail", "USD", (), None),
)


def items():
    return [snap("alice:kraken", "100", T0 + i * MIN, currency=currency, assets=assets)
            for i, (_label, currency, assets, _cash) in enumerate(CASES)]


def reference(store: BalanceStore, snapshot_id: int, currency: str) -> D | None:
    """The rule over the snapshot's asset rows as the store returns them."""
    rows = store.snapshot_assets(snapshot_id)
    if not rows:
        return None
    own = [row.value for row in rows if row.asset == currency]
    return own[0] if own and own[0] is not None else D(0)


def stored(store: BalanceStore) -> dict[int, D | None]:
    """id -> ``snapshots.cash`` as stored (through the column's type: Decimal or None)."""
    with store._engine.connect() as connection:
        return dict(connection.execute(snapshots.select().with_only_columns(snapshots.c.id, snapshots.c.cash)).all())


def check_cash(store: BalanceStore, ids: list[int]) -> None:
    """Stored column, `snapshot_cash`, the history's cash column and `reference` all agree with CASES."""
    expected = {id_: cash for id_, (_label, _currency, _assets, cash) in zip(ids, CASES)}
    column = stored(store)
    for id_, (label, currency, _assets, cash) in zip(ids, CASES):
        assert (column[id_], str(column[id_])) == (cash, str(cash)), label  # same value, same digits
        assert reference(store, id_, currency) == cash, label
    assert store.snapshot_cash(ids + [999_999]) == {i: c for i, c in expected.items() if c is not None}
    history = store.snapshot_history_columns("alice:kraken", T0, T0 + len(CASES) * MIN)
    assert dict(zip(history.ids, history.cash)) == expected
    assert [str(c) for c in history.cash] == [str(c) for c in expected.values()]


# --- write path ---------------------------------------------------------------------------------

def test_new_snapshots_are_written_with_their_cash(store):
    ids = store.add_snapshots(items())
    check_cash(store, ids)


def test_cash_of_states_the_rule():
    for label, currency, assets, cash in CASES:
        value = cash_of(snap(currency=currency, assets=assets))
        assert (value, str(value)) == (cash, str(cash)), label


def test_a_refresh_of_many_accounts_stores_each_ones_cash(store):
    batch = [snap(f"user{i}:kraken", str(i), T0, assets=(AssetRow("USD", D(i), D(1), D(i)),) if i % 3 == 0
                  else (BTC_ROW,) if i % 3 == 1 else ()) for i in range(600)]  # more than one id chunk
    ids = store.add_snapshots(batch)
    column = stored(store)
    assert [column[i] for i in ids] == [D(i) if i % 3 == 0 else D(0) if i % 3 == 1 else None for i in range(600)]
    assert store.snapshot_cash(ids) == {id_: column[id_] for id_ in ids if column[id_] is not None}


# --- migration 0007 -----------------------------------------------------------------------------

def migrate(url: str, revision: str, down: bool = False) -> None:
    """Upgrade (or downgrade) the database of `url` to `revision`, as `upgrade_to_head` does."""
    engine = create_store_engine(url)
    try:
        config = alembic_config()
        with writer(engine).begin() as connection:
            config.attributes["connection"] = connection
            (command.downgrade if down else command.upgrade)(config, revision)
    finally:
        engine.dispose()


def write_at_0006(url: str) -> list[int]:
    """CASES as snapshots written into a store at revision 0006 (no cash column yet); their ids."""
    columns = ("id", "account_id", "owner", "broker", "balance", "currency", "source", "captured_at", "created_at")
    engine = create_store_engine(url)
    try:
        with writer(engine).begin() as connection:
            ids = list(range(1, len(CASES) + 1))
            bulk.insert(connection, snapshots, columns, [
                (id_, s.account_id, s.owner, s.broker, s.balance, s.currency, s.source, s.captured_at,
                 T0) for id_, s in zip(ids, items())])
            bulk.insert(connection, snapshot_assets, ("snapshot_id", "asset", "amount", "price", "value"), [
                (id_, a.asset, a.amount, a.price, a.value) for id_, s in zip(ids, items()) for a in s.assets])
            connection.execute(text("INSERT INTO accounts VALUES ('alice:kraken', 'alice', 'kraken')"))
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT setval(pg_get_serial_sequence('snapshots', 'id'), :n)"),
                                   {"n": len(ids)})
        return ids
    finally:
        engine.dispose()


def snapshot_columns(url: str) -> tuple[list[str], list[str]]:
    """(columns of ``snapshots``, columns of its covering index) as the database has them."""
    engine = create_store_engine(url)
    try:
        found = inspect(engine)
        [index] = [i for i in found.get_indexes("snapshots") if i["name"] == "ix_snapshots_account_time"]
        return [c["name"] for c in found.get_columns("snapshots")], list(index["column_names"])
    finally:
        engine.dispose()


def test_migration_fills_the_cash_of_existing_snapshots(fresh_database_url):
    migrate(fresh_database_url, "0006")
    assert "cash" not in snapshot_columns(fresh_database_url)[0]
    ids = write_at_0006(fresh_database_url)
    with BalanceStore(fresh_database_url) as store:  # opening migrates to head
        assert current_revision(store._engine) == head_revision()
        check_cash(store, ids)
        [newer] = store.add_snapshots([snap("alice:kraken", "1", T0 + 20 * MIN, assets=(USD_ROW,))])
        assert newer == ids[-1] + 1 and store.snapshot_cash([newer]) == {newer: D("12.50")}
    columns, index = snapshot_columns(fresh_database_url)
    assert columns[-1] == "cash" and index[-1] == "cash"  # the history still reads the index alone


def test_migration_0007_downgrades_and_upgrades_again(fresh_database_url):
    migrate(fresh_database_url, "0006")
    ids = write_at_0006(fresh_database_url)
    migrate(fresh_database_url, "0007")
    migrate(fresh_database_url, "0006", down=True)
    columns, index = snapshot_columns(fresh_database_url)
    assert "cash" not in columns and "cash" not in index
    with BalanceStore(fresh_database_url) as store:
        check_cash(store, ids)


def test_migration_on_an_empty_store(fresh_database_url):
    migrate(fresh_database_url, "0006")
    migrate(fresh_database_url, "0007")
    with BalanceStore(fresh_database_url) as store:
        assert store.snapshot_cash([1]) == {} and len(store.snapshot_history_columns("a:b", T0, T0)) == 0
