"""One truth across the processes on one configuration (the bot, the monitor, the web, CLI runs).

`SharedTruth(config, store, role)` is one process's part, wired by the manager facade:

- `LeaseKeeper` (``keeper``): the `BalanceService`'s gate; the process reads with an API key only
  while it holds that key's lease (`bot.balances.leases`, roles ``reader`` / ``auto`` /
  ``follower``), and the ``closer`` lease says which process closes the days;
- `StatePublisher`: every state read here goes to the shared ``account_states`` table;
- `SharedStates` (``shared``): the other processes' states, followed within about 1 s; each one
  for an account this process does not read is adopted into the service (`BalanceService.adopt`),
  so the in-process API, the views, the metrics and the alerts answer from memory as before. At
  start the stored state of an account this process reads becomes its previous state too: a read
  that fails then shows the last good value as ``stale`` with its age, in a fresh process;
- forced rounds: `refresh` of a caller (``manual_sync``: the CLI's ``--refresh``, ``POST
  /api/refresh``, ``manager.refresh()``) asks the live readers of the accounts it follows for a
  round (a request row, plus ``NOTIFY`` on PostgreSQL) and waits until their states come from
  reads that began after the request, at most ``first_read_timeout_seconds``; a non-forced
  refresh (the CLI without ``--refresh``) asks only for followed states older than the TTL. The
  accounts it holds, it reads itself. Each process serves the requests of the others on its
  ``forced-rounds`` thread: a forced round of the accounts it holds, then again for those whose
  read had begun before the request (a read in flight is joined, and it began too early).

In distributed mode (``fetch.mode``, `bot.distributed`) every process but the workers is a
follower (whatever its role): its refreshes become jobs of the task queue (``fleet``,
`bot.distributed.rounds.FleetRounds`) and paper accounts are read by the workers too, so that
each account has one reader.

Locks: ``_rounds_lock`` guards ``_pending_rounds`` (owner or `_ALL` → the latest request time,
epoch seconds) and is the condition the round thread waits on. The parts have their own locks.
"""
from __future__ import annotations

import logging
import threading
import time

from bot.balances.leases import LeaseKeeper, keys_of, process_identity
from bot.balances.publisher import StatePublisher
from bot.balances.service import ServiceClosed
from bot.balances.shared import SharedStates
from bot.core.sources import FORCED, ON_DEMAND
from bot.store.truth import RoundRequest, SharedState, TruthStore

log = logging.getLogger(__name__)

_ALL = object()  # a pending round of every account


def gated_accounts(config) -> dict[str, str]:
    """What the lease keeper gates: `keys_of`, and in distributed mode the paper accounts too
    (under a name no lease has: only the workers read them)."""
    gated = keys_of(config)
    if config.settings.fetch.distributed:
        gated.update({a.account_id: f"paper:{a.account_id}" for a in config.accounts() if a.broker.paper})
    return gated


class SharedTruth:
    def __init__(self, config, store, role: str, identity: str | None = None, **lease_timing):
        """``store`` a `BalanceStore`; ``role`` reader | auto | follower; ``lease_timing``
        (``lease_seconds``, ``renew_seconds``) for tests."""
        self.identity = identity or process_identity()
        self._settings = config.settings
        self._order = tuple(a.account_id for a in config.accounts())
        self._truth = TruthStore(store)
        distributed = config.settings.fetch.distributed
        self.keeper = LeaseKeeper(self._truth, self.identity, "follower" if distributed else role,
                                  gated_accounts(config), closer="once", **lease_timing)
        self.shared = SharedStates(self._truth, config, own_reader=self.identity)
        self.fleet = None
        if distributed:  # imported only here: local processes never load the task queue
            from bot.distributed.rounds import FleetRounds
            self.fleet = FleetRounds(config, self._truth, self.shared)
        self._publisher = StatePublisher(self._truth, self.identity, self.keeper.floors)
        self._service = None
        self._rounds_lock = threading.Condition()
        self._pending_rounds: dict = {}
        self._stop = threading.Event()
        self._round_thread: threading.Thread | None = None

    @property
    def role(self) -> str:
        return self.keeper.role

    def is_closer(self) -> bool:
        """Whether this process closes days now: it holds the closer lease, or takes it (no live
        process holds it)."""
        return self.keeper.take_closer()

    # ------------------------------------------------------------------ lifecycle

    def start(self, service) -> SharedTruth:
        """Claim the leases, load and follow the shared states into ``service``, publish its reads."""
        self._service = service
        if self.fleet is not None:
            self.fleet.attach(service)
        self.keeper.start()
        self.shared.subscribe_rows(self._follow)
        self.shared.on_rounds = self._rounds_requested
        service.subscribe(self._publisher.on_state)
        self._publisher.start()
        self.shared.start()
        self._round_thread = threading.Thread(target=self._serve_rounds, name="forced-rounds", daemon=True)
        self._round_thread.start()
        return self

    def close(self) -> None:
        """After the service closed: write what is queued, stop following, release the leases."""
        self._stop.set()
        with self._rounds_lock:
            self._rounds_lock.notify_all()
        if self._round_thread is not None:
            self._round_thread.join()
        self._publisher.stop()
        self.shared.stop()
        self.keeper.stop()
        if self.fleet is not None:
            self.fleet.close()

    def flush(self) -> None:
        """Wait until the states read so far are in the store."""
        self._publisher.flush()

    # ------------------------------------------------------------------ following

    def _follow(self, row: SharedState, previous: SharedState | None) -> None:
        state = row.state
        if row.reader == self.identity:
            return
        if self.keeper.holds(state.account_id) and previous is not None:
            return  # read here; a late row of the previous reader is not news
        age = state.age_seconds()
        self._service.adopt(state, fresh=age is not None and age < self._settings.cache_ttl_seconds)

    # ------------------------------------------------------------------ forced rounds

    def refresh(self, force: bool, source: str, owner: str | None):
        """The manager's refresh (see the module docstring); returns the states of the accounts."""
        if self.fleet is not None:
            return self.fleet.refresh(force, source, owner)
        service, keeper = self._service, self.keeper
        deadline = time.monotonic() + self._settings.first_read_timeout_seconds
        ids = self._order if owner is None else service.owner_ids(owner)
        asked = []
        if source == FORCED or not force:
            asked = [i for i in ids if keeper.gated(i) and not keeper.holds(i) and keeper.live_elsewhere(i)
                     and (source == FORCED or self.shared.outdated(i, self._settings.cache_ttl_seconds))]
        request = self._truth.request_round(self.identity, owner) if asked else None
        states = service.refresh(force=force, source=source, owner=owner)
        if request is None:
            return states
        if not self.shared.wait_read_since(asked, request.requested_at, deadline - time.monotonic()):
            log.info("forced round: %d followed accounts not rewritten within %g s", len(asked),
                     self._settings.first_read_timeout_seconds)
        return service.states(tuple(ids), source=ON_DEMAND)

    def _rounds_requested(self, requests: list[RoundRequest]) -> None:
        asked = [r for r in requests if r.requested_by != self.identity]
        if asked:
            with self._rounds_lock:
                for r in asked:
                    owner = _ALL if r.owner is None else r.owner
                    self._pending_rounds[owner] = max(self._pending_rounds.get(owner, 0.0), r.requested_at.timestamp())
                self._rounds_lock.notify_all()

    def _serve_rounds(self) -> None:
        while True:
            with self._rounds_lock:
                self._rounds_lock.wait_for(lambda: self._pending_rounds or self._stop.is_set())
                if self._stop.is_set():
                    return
                owners, self._pending_rounds = self._pending_rounds, {}
            rounds = [(None, max(owners.values()))] if _ALL in owners else sorted(owners.items())
            for owner, since in rounds:
                try:
                    self._forced_round(owner, since)
                except KeyError:
                    pass  # an owner of another configuration on this database
                except ServiceClosed:
                    return
                except Exception as exc:
                    log.warning("forced round for another process failed: %s: %s", type(exc).__name__, exc)

    def _forced_round(self, owner: str | None, since: float) -> None:
        """Read the accounts held here (of ``owner``) with reads that begin after ``since``."""
        states = self._service.refresh(force=True, source=FORCED, owner=owner)
        started = self._publisher.read_started
        again = tuple(s.account_id for s in states if self.keeper.gated(s.account_id)
                      and self.keeper.holds(s.account_id) and started.get(s.account_id, 0.0) < since)
        if again:
            self._service.states(again, force=True, wait_all=True, source=FORCED)

    # ------------------------------------------------------------------ health

    def readers(self) -> dict:
        """The `LeaseKeeper.readers` counts (for /healthz); in distributed mode the keys are read
        "elsewhere" while a worker is live (``queue_workers``: how many queue workers), else "unheld"."""
        if self.fleet is None:
            return self.keeper.readers()
        keys = len(set(keys_of(self._service.config).values()))
        try:
            workers = self.fleet.queue_workers() or 0
        except Exception as exc:
            log.warning("health: counting the workers failed (%s: %s)", type(exc).__name__, exc)
            workers = 0
        return {"keys": keys, "here": 0, "elsewhere": keys if workers else 0, "unheld": 0 if workers else keys,
                "queue_workers": workers}
