"""`LeaseKeeper`: one reader per API key across every process on a configuration.

Before this process reads with an API key it must hold that key's lease in the store
(`bot.store.leases`, named by the key's fingerprint, never the key); the `BalanceService` asks
`may_read(account_id)` before each read and says `read_done` after it. Leases last
`LEASE_SECONDS` (30 s) and are renewed every `RENEW_SECONDS` by the keeper's thread; one whose
renewal has failed for ``LEASE_SECONDS - MARGIN_SECONDS`` stops allowing reads here before it can
expire in the store, so that two processes never read with one key at once. A crashed holder's
leases expire within 30 s; the keeper of every other process wakes when a foreign lease expires
and takes it (``auto`` and ``reader`` roles), continuing the key's nonces, spacing and call
counter from the floors stored with the lease (`ExchangeRegistry.continue_key`): the floors
(last nonce, last call, modelled counter level right after it) are written with every renewal,
handover and release, and by the state publisher after reads. Paper accounts need no lease.

Roles: ``reader`` takes every lease it can and asks ``auto`` holders to hand theirs over;
``auto`` takes the free ones and hands a lease over when a reader asks (after its reads with
that key finished); ``follower`` takes none. The ``closer`` lease (who closes the days,
`bot.history.recorder`) is wanted once at start (``closer="once"``: finalise the missed days,
then give it back at once, `closer_done`) or kept (`keep_closer`: a process with a scheduler);
``on_closer`` runs on the keeper's thread whenever this process gets it later.

Locks: ``_lock`` (with ``_drained``, its condition) guards ``_inflight`` (fingerprint → reads in
progress) and ``_readable`` (fingerprints this process may read now: a frozenset, replaced,
so `holds` reads it without the lock). ``_claim_lock`` serialises the claims (the keeper's
thread, `take_closer`, `closer_done`, `stop`) and the writes of ``_valid_until`` (monotonic end
of the key leases' validity here), ``_closer_until`` (the closer lease's; 0 when not held) and
``_snapshot``; those are single assignments, read without a lock.
"""
from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from datetime import datetime, timedelta, timezone
from typing import Callable, Iterable

from bot.store.leases import CLOSER, KEY_PREFIX, Claimed, Floors

log = logging.getLogger(__name__)

LEASE_SECONDS = 30.0
RENEW_SECONDS = 10.0
MARGIN_SECONDS = 5.0
HANDOVER_POLL_SECONDS = 1.0
DRAIN_SECONDS = 60.0  # stop(): how long the reads in progress may take before the leases are released anyway
ROLES = ("auto", "reader", "follower")


def process_identity() -> str:
    """``host:pid/tag``: who reads (the tag tells two managers of one process apart)."""
    return f"{socket.gethostname()}:{os.getpid()}/{secrets.token_hex(2)}"


def keys_of(config) -> dict[str, str]:
    """Account id → fingerprint of its API key, for the accounts that read an exchange."""
    return {a.account_id: a.broker.credentials.api_key.fingerprint() for a in config.accounts()
            if not a.broker.paper and a.broker.credentials is not None}


class _Readable:
    """The account ids of ``base`` this process may read now (a set-like view for the cache)."""

    __slots__ = ("_base", "_keeper")

    def __init__(self, base, keeper: LeaseKeeper):
        self._base, self._keeper = base, keeper

    def __contains__(self, account_id: str) -> bool:
        return account_id in self._base and self._keeper.holds(account_id)


class LeaseKeeper:
    def __init__(self, truth, identity: str, role: str, key_of: dict[str, str], closer: str = "never",
                 lease_seconds: float = LEASE_SECONDS, renew_seconds: float = RENEW_SECONDS):
        """``truth`` a `bot.store.truth.TruthStore`; ``key_of`` account id → API key fingerprint
        (accounts that need a lease); ``closer`` "never" | "once" | "keep"."""
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
        self._truth = truth
        self.identity = identity
        self.role = role
        self._key_of = dict(key_of)
        self._names = {KEY_PREFIX + fp for fp in self._key_of.values()}
        self.closer_mode = closer
        self._duration = timedelta(seconds=lease_seconds)
        self._renew = renew_seconds
        self._margin = min(MARGIN_SECONDS, lease_seconds / 3)
        self._registry = None
        self.on_closer: Callable[[], None] | None = None
        self._lock = threading.Lock()
        self._drained = threading.Condition(self._lock)
        self._inflight: dict[str, int] = {}
        self._readable: frozenset[str] = frozenset()
        self._held: frozenset[str] = frozenset()  # fingerprints held as of the last claim (keeper's thread)
        self._claim_lock = threading.Lock()
        self._valid_until = 0.0
        self._closer_until = 0.0
        self._snapshot: tuple[float, Claimed] | None = None  # (monotonic time of the claim, its result)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ the service's seam

    def attach(self, registry) -> None:
        """The exchange registry whose keys' nonces and spacing the leases carry."""
        self._registry = registry

    def gated(self, account_id: str) -> bool:
        """Whether ``account_id`` needs a lease (an exchange account; paper ones do not)."""
        return account_id in self._key_of

    def holds(self, account_id: str) -> bool:
        """Whether this process may read ``account_id`` now (no lock; microseconds)."""
        fingerprint = self._key_of.get(account_id)
        return fingerprint is None or (fingerprint in self._readable and time.monotonic() < self._valid_until)

    def readable(self, base) -> _Readable:
        return _Readable(base, self)

    def may_read(self, account_id: str) -> bool:
        """Called before a read: True (and the read is counted in flight) while the lease is held."""
        fingerprint = self._key_of.get(account_id)
        if fingerprint is None:
            return True
        with self._lock:
            if not self.holds(account_id):
                return False
            self._inflight[fingerprint] = self._inflight.get(fingerprint, 0) + 1
            return True

    def read_done(self, account_id: str) -> None:
        """Called after a read that `may_read` allowed (however it ended)."""
        fingerprint = self._key_of.get(account_id)
        if fingerprint is None:
            return
        with self._lock:
            self._inflight[fingerprint] -= 1
            if not self._inflight[fingerprint]:
                del self._inflight[fingerprint]
                self._drained.notify_all()

    # ------------------------------------------------------------------ what others ask

    @property
    def closer(self) -> bool:
        """Whether this process holds the closer lease now."""
        return time.monotonic() < self._closer_until

    def take_closer(self) -> bool:
        """Whether this process holds the closer lease now, taking it if no live process does
        (a close asked for directly; given back at the next renewal unless `keep_closer`)."""
        if self.closer:
            return True
        with self._claim_lock:
            started = time.monotonic()
            claimed = self._truth.claim(self.identity, self.role, [CLOSER], (), self._duration, {})
            self._set_closer(claimed, started)
        return self.closer

    def _set_closer(self, claimed: Claimed, started: float) -> None:
        held = CLOSER in claimed.held
        self._closer_until = started + self._duration.total_seconds() - self._margin if held else 0.0

    def floors(self, account_ids: Iterable[str]) -> list[Floors]:
        """The continuation (last nonce, last call, counter level) of the keys of ``account_ids`` held here."""
        fingerprints = {self._key_of[a] for a in account_ids if a in self._key_of} & self._readable
        return [self._floors_of(fp) for fp in sorted(fingerprints)]

    def live_elsewhere(self, account_id: str) -> bool:
        """Whether another process holds the lease of ``account_id``'s key (as of the last renewal)."""
        fingerprint = self._key_of.get(account_id)
        return fingerprint is not None and self._held_elsewhere(fingerprint)

    def _held_elsewhere(self, fingerprint: str) -> bool:
        snapshot = self._snapshot
        if snapshot is None:
            return False
        at, claimed = snapshot
        lease = claimed.others.get(KEY_PREFIX + fingerprint)
        return lease is not None and _remaining(lease.expires_at, claimed.now) > time.monotonic() - at

    def readers(self) -> dict:
        """``keys`` (API keys of the configuration), ``here`` / ``elsewhere`` (held by this / another
        live process), ``unheld`` (by no live process): for /healthz."""
        fingerprints = set(self._key_of.values())
        here = fingerprints & self._readable if time.monotonic() < self._valid_until else set()
        elsewhere = {fp for fp in fingerprints - here if self._held_elsewhere(fp)}
        return {"keys": len(fingerprints), "here": len(here), "elsewhere": len(elsewhere),
                "unheld": len(fingerprints) - len(here) - len(elsewhere)}

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> LeaseKeeper:
        """Claim now (raises what the store raises), then renew on the keeper's thread."""
        with self._claim_lock:
            self._cycle(first=True)
        self._thread = threading.Thread(target=self._run, name="lease-keeper", daemon=True)
        self._thread.start()
        return self

    def closer_done(self) -> None:
        """The start-up catch-up is over: give the closer lease back now, unless `keep_closer`."""
        if self.closer_mode != "once":
            return
        self.closer_mode = "never"
        with self._claim_lock:
            if not self._closer_until:
                return
            self._closer_until = 0.0
            try:
                self._truth.release(self.identity, [CLOSER])
            except Exception:
                log.warning("leases: giving the closer lease back failed (it expires within %g s)",
                            self._duration.total_seconds(), exc_info=True)

    def keep_closer(self) -> None:
        """From now on want the closer lease for good (a scheduler runs the midnight close)."""
        self.closer_mode = "keep"
        self._wake.set()

    def stop(self) -> None:
        """Stop renewing; once the reads in progress ended, release every lease held (floors written)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        with self._lock:
            held, self._readable = self._readable, frozenset()
            self._drained.wait_for(lambda: not self._inflight, timeout=DRAIN_SECONDS)
        with self._claim_lock:
            names = [KEY_PREFIX + fp for fp in held] + ([CLOSER] if self._closer_until else [])
            self._closer_until = 0.0
        if names:
            try:
                self._truth.release(self.identity, names, {f.name: f for f in map(self._floors_of, held)})
            except Exception:
                log.warning("leases: releasing %d leases failed (they expire within %g s)", len(names),
                            self._duration.total_seconds(), exc_info=True)

    def _run(self) -> None:
        delay = self._renew
        while not self._stop.is_set():
            self._wake.wait(delay)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                with self._claim_lock:
                    delay = self._cycle()
            except Exception as exc:
                log.warning("leases: renewal failed (%s: %s); retrying", type(exc).__name__, exc)
                delay = min(self._renew, 2.0)

    def _cycle(self, first: bool = False) -> float:
        """One claim: renew, take, hand over; returns the seconds until the next one."""
        handing, draining = self._handovers()
        wanted = set() if self.role == "follower" else self._names - handing
        closer = self.closer_mode == "keep" or (self.closer_mode == "once" and first)
        if closer:
            wanted.add(CLOSER)
        release_closer = bool(self._closer_until) and not closer
        floors = {f.name: f for f in map(self._floors_of, {n[len(KEY_PREFIX):] for n in handing} | self._readable)}
        started = time.monotonic()
        claimed = self._truth.claim(self.identity, self.role, wanted, handing | ({CLOSER} if release_closer else set()),
                                    self._duration, floors,
                                    watching=self._names if self.role == "follower" else ())
        got = {name[len(KEY_PREFIX):] for name in claimed.held if name != CLOSER}
        for fingerprint in got - self._held:  # taken now: continue the previous reader's nonces, spacing, counter
            lease = claimed.held[KEY_PREFIX + fingerprint]
            if self._registry is not None:
                self._registry.continue_key(fingerprint, lease.nonce_floor,
                                            None if lease.last_call_at is None else lease.last_call_at.timestamp(),
                                            lease.counter_level)
        gained_closer = CLOSER in claimed.held and not self._closer_until
        self._held = frozenset(got)
        with self._lock:
            self._readable = frozenset(got - draining)
        self._valid_until = started + self._duration.total_seconds() - self._margin
        self._snapshot = (started, claimed)
        self._set_closer(claimed, started)
        if gained_closer and not first and self.on_closer is not None:
            self._run_closer()
        return self._next_delay(claimed, started)

    def _run_closer(self) -> None:
        try:
            self.on_closer()
        except Exception:
            log.exception("leases: the closer's catch-up failed")

    def _handovers(self) -> tuple[set[str], set[str]]:
        """(names of leases to hand over now, fingerprints still draining): held leases a reader
        asked for (role auto) allow no new read; each is handed over once its reads ended."""
        snapshot = self._snapshot
        if self.role != "auto" or snapshot is None:
            return set(), set()
        asked = {name[len(KEY_PREFIX):] for name, lease in snapshot[1].held.items()
                 if name != CLOSER and lease.wanted_by not in (None, self.identity)}
        if not asked:
            return set(), set()
        with self._lock:
            self._readable = self._readable - asked
            draining = asked & self._inflight.keys()
        if asked - draining:
            log.info("leases: handing %d keys over to a reader", len(asked - draining))
        return {KEY_PREFIX + fp for fp in asked - draining}, draining

    def _next_delay(self, claimed: Claimed, started: float) -> float:
        # every `_renew` seconds from the start of a claim, however long the claims take
        delay = max(0.05, self._renew - (time.monotonic() - started))
        if self.role == "follower":
            return delay
        for lease in claimed.others.values():
            if lease.name == CLOSER and self.closer_mode != "keep":
                continue
            until = _remaining(lease.expires_at, claimed.now)
            if until <= 0:  # handed over, reserved for a reader: take it if that reader never does
                until += self._duration.total_seconds()
            delay = min(delay, max(0.05, until + 0.05 - (time.monotonic() - started)))
            if self.role == "reader" and lease.role != "reader" and lease.name != CLOSER:
                delay = min(delay, HANDOVER_POLL_SECONDS)
        if self.role == "auto" and any(l.wanted_by not in (None, self.identity) for l in claimed.held.values()):
            delay = min(delay, 0.1)
        return delay

    def _floors_of(self, fingerprint: str) -> Floors:
        nonce, last_call, level = (None, None, None) if self._registry is None else self._registry.key_floors(fingerprint)
        return Floors(KEY_PREFIX + fingerprint, nonce,
                      None if last_call is None else datetime.fromtimestamp(last_call, timezone.utc), level)


def _remaining(expires_at: datetime, now: datetime) -> float:
    return (expires_at - now).total_seconds()
