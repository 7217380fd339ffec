"""`TruthStore`: the shared state of the processes on one database, beside the history.

Built on a `BalanceStore`'s engines (same pool, same SQLite write lock): the account states
(`bot.store.shared`), the leases and round requests (`bot.store.leases`) and the change feed
(`bot.store.changes`). Each method is one short transaction; writes are write transactions
(SQLite ``BEGIN IMMEDIATE``). Thread-safe like the store: no mutable state of its own.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Iterable

from bot.core.state import AccountState
from bot.store import fleet, leases, shared
from bot.store.changes import ChangeFeed
from bot.store.fleet import KeyTurn
from bot.store.leases import Claimed, Floors, Lease, RoundRequest
from bot.store.shared import SharedState

__all__ = ["Claimed", "Floors", "KeyTurn", "Lease", "RoundRequest", "SharedState", "TruthStore"]


class TruthStore:
    def __init__(self, store):
        self.store = store
        self._engine, self._writer = store.engines()

    @property
    def dialect(self) -> str:
        return self._engine.dialect.name

    def change_feed(self) -> ChangeFeed:
        return ChangeFeed(self._engine)

    def now(self) -> datetime:
        with self._engine.begin() as connection:
            return shared.database_now(connection)

    # --- states ---------------------------------------------------------------------------------

    def publish(self, states: list[AccountState], reader: str, floors: Iterable[Floors] = (),
                read_started: dict[str, float] | None = None) -> datetime:
        """Upsert ``states`` as read by ``reader`` (``read_started``: account id → when each read
        began, epoch seconds) and record the floors of its keys, in one transaction (followers are
        notified at commit); returns the rows' ``updated_at``."""
        with self._writer.begin() as connection:
            written = shared.upsert_states(connection, states, reader, read_started)
            leases.write_floors(connection, reader, floors)
            return written

    def states(self, since: datetime | None = None, except_reader: str | None = None) -> list[SharedState]:
        """Every shared state, or those written since ``since`` (minus `shared.OVERLAP`); without
        those ``except_reader`` wrote."""
        with self._engine.begin() as connection:
            return shared.load_states(connection, since, except_reader)

    def state(self, account_id: str) -> SharedState | None:
        with self._engine.begin() as connection:
            return shared.load_state(connection, account_id)

    # --- a worker's read (distributed mode, `bot.store.fleet`) ------------------------------------

    def begin_read(self, key_name: str | None, holder: str, account_id: str) -> tuple[KeyTurn, AccountState | None]:
        """The turn of a read of ``account_id`` with the key ``key_name`` (None: a paper account,
        no key) and the account's shared state (its previous state), in one transaction."""
        with self._writer.begin() as connection:
            if key_name is None:
                turn = KeyTurn(None, shared.database_now(connection))
            else:
                turn = fleet.begin_turn(connection, key_name, holder)
            row = shared.load_state(connection, account_id)
            return turn, None if row is None else row.state

    def finish_read(self, state: AccountState | None, reader: str, source: str, turn: KeyTurn,
                    nonce: int | None = None, counter_level: float | None = None) -> None:
        """Write the state a read of ``turn`` produced (its read began at ``turn.started_at``; None:
        no state, the read was given up) and advance the key's continuation (``nonce``: the highest
        sent; ``counter_level``: the key's modelled counter now), in one transaction."""
        with self._writer.begin() as connection:
            if state is not None:
                shared.upsert_states(connection, [state], reader, {state.account_id: turn.started_at.timestamp()},
                                     {state.account_id: source})
            if turn.name is not None:
                fleet.end_turn(connection, turn.name, reader, nonce, counter_level)

    # --- leases ---------------------------------------------------------------------------------

    def claim(self, holder: str, role: str, wanted: Iterable[str], handing_over: Iterable[str] = (),
              duration: timedelta = timedelta(seconds=30), floors: dict[str, Floors] | None = None,
              watching: Iterable[str] = ()) -> Claimed:
        with self._writer.begin() as connection:
            return leases.claim(connection, holder, role, wanted, handing_over, duration, floors or {}, watching)

    def release(self, holder: str, names: Iterable[str], floors: dict[str, Floors] | None = None) -> None:
        with self._writer.begin() as connection:
            leases.release(connection, holder, names, floors or {})

    def leases(self) -> dict[str, Lease]:
        with self._engine.begin() as connection:
            return leases.read_leases(connection)

    # --- round requests -------------------------------------------------------------------------

    def request_round(self, requested_by: str, owner: str | None) -> RoundRequest:
        with self._writer.begin() as connection:
            return leases.add_request(connection, requested_by, owner)

    def round_requests(self, after_id: int) -> list[RoundRequest]:
        with self._engine.begin() as connection:
            return leases.requests_after(connection, after_id)

    def last_round_request(self) -> int:
        with self._engine.begin() as connection:
            return leases.last_request_id(connection)
