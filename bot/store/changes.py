"""Waiting for other processes' commits, cheaply: the change feed of the shared state.

SQLite: ``PRAGMA data_version`` on one connection held for the feed, polled every `POLL_SECONDS`
(it changes when any other connection, of this process or another, commits; reading it costs
microseconds and takes no lock). PostgreSQL: ``LISTEN`` on the shared-state channels on one
connection held for the feed (`bot.store.shared` writers ``NOTIFY`` at commit), waited on for at
most `POLL_SECONDS` at a time so that `wait` returns soon after ``stop`` is set.

A `ChangeFeed` is used by one thread (its follower's); it is not thread-safe. A connection that
breaks is dropped and reopened at the next `wait`, which then says "changed" (the caller reloads
everything: notifications may have been missed meanwhile).
"""
from __future__ import annotations

import logging
import threading
import time

from sqlalchemy import Engine

from bot.store.shared import ROUNDS_CHANNEL, STATES_CHANNEL

log = logging.getLogger(__name__)

POLL_SECONDS = 0.5  # one check per half second: a follower sees a commit within 1 s, query included


class ChangeFeed:
    def __init__(self, engine: Engine):
        self._engine = engine
        self._postgresql = engine.dialect.name == "postgresql"
        self._raw = None        # the pooled DBAPI connection held by the feed, or None
        self._version = None    # SQLite: the last data_version seen

    def prime(self) -> None:
        """Open the feed before the first load, so that no commit after that load is missed."""
        self._open()

    def wait(self, stop: threading.Event, timeout: float) -> bool:
        """True when another connection may have committed since the last call (or the feed was
        reopened); False after ``timeout`` seconds or once ``stop`` is set."""
        deadline = time.monotonic() + timeout
        while not stop.is_set():
            try:
                if self._raw is None:
                    self._open()
                    return True
                if self._changed(min(POLL_SECONDS, max(0.0, deadline - time.monotonic()))):
                    return True
            except Exception as exc:  # the database went away: reopen later, then reload
                log.warning("shared state: change feed lost its connection (%s); reconnecting", type(exc).__name__)
                self.close()
                stop.wait(min(POLL_SECONDS, max(0.0, deadline - time.monotonic())))
            if time.monotonic() >= deadline:
                return False
            if not self._postgresql:
                stop.wait(min(POLL_SECONDS, max(0.0, deadline - time.monotonic())))
        return False

    def _open(self) -> None:
        raw = self._engine.raw_connection()
        try:
            driver = raw.driver_connection
            if self._postgresql:
                driver.rollback()
                driver.autocommit = True
                for channel in (STATES_CHANNEL, ROUNDS_CHANNEL):
                    driver.execute(f"LISTEN {channel}")
            else:
                self._version = driver.execute("PRAGMA data_version").fetchone()[0]
        except BaseException:
            raw.invalidate()
            raise
        self._raw = raw

    def _changed(self, timeout: float) -> bool:
        driver = self._raw.driver_connection
        if not self._postgresql:
            version = driver.execute("PRAGMA data_version").fetchone()[0]
            changed, self._version = version != self._version, version
            return changed
        got = False
        for _ in driver.notifies(timeout=timeout, stop_after=1):
            got = True
        if got:  # take what else is queued without waiting again
            for _ in driver.notifies(timeout=0.001):
                pass
        return got

    def close(self) -> None:
        """Give the connection up (a PostgreSQL one is closed: it is listening)."""
        raw, self._raw = self._raw, None
        if raw is None:
            return
        try:
            if self._postgresql:
                raw.invalidate()
            else:
                raw.close()
        except Exception:
            log.debug("shared state: closing the change feed failed", exc_info=True)
