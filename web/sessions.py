"""Browser sessions that end for real at logout: a random session id, revoked server-side.

The session cookie is signed, not stored, so clearing it in the browser does not stop a copy of
it from working. Each login therefore puts a fresh random id (``sid``) in the session;
``POST /logout`` (and a new login over an existing session) revokes that id, and every request
made with a session cookie is refused when its id is missing or revoked.

Revocations live in the history store (`BalanceStore.revoke_session`, table
``revoked_sessions``), so they hold in every process that shares the database and across
restarts (with a configured ``web.secret_key``; without one, a restart ends every session
anyway). A revocation is kept for one session lifetime, after which the cookie has expired by
itself. Without a store (history off) they are kept in this process's memory only.

A store that cannot answer makes the check fail closed: `SessionUnavailable`, a 503 problem.

Thread-safety: ``_lock`` guards ``_revoked`` (session id -> monotonic time of revocation), the
ids known to be revoked in this process: a revoked id never becomes valid again, so it is
answered from memory without a query.
"""
from __future__ import annotations

import datetime as dt
import logging
import secrets
import threading
import time

from flask.sessions import SecureCookieSessionInterface

log = logging.getLogger(__name__)

SESSION_KEY = "sid"


class CookieSessions(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, with the signing serializer made once per set of keys:
    Flask makes a new one at every request (and each new one test-serializes a value), which was
    a tenth of a page request's work. The serializer holds no per-request state; two threads
    that race make equal ones."""

    _made: tuple | None = None  # (keys, serializer)

    def get_signing_serializer(self, app):
        keys = (app.secret_key, tuple(app.config["SECRET_KEY_FALLBACKS"] or ()))
        made = self._made
        if made is None or made[0] != keys:
            made = self._made = (keys, super().get_signing_serializer(app))
        return made[1]


class SessionUnavailable(RuntimeError):
    """The store that holds the revocations did not answer (the message names no secret)."""


def new_session_id() -> str:
    return secrets.token_urlsafe(24)  # 32 characters, 192 random bits


class SessionRevocations:
    def __init__(self, store, lifetime: dt.timedelta, clock=time.monotonic):
        self._store = store
        self._lifetime = lifetime
        self._clock = clock
        self._lock = threading.Lock()
        self._revoked: dict[str, float] = {}

    def revoke(self, session_id: str) -> None:
        """End ``session_id`` everywhere (raises SessionUnavailable if the store fails)."""
        now = self._clock()
        with self._lock:
            self._revoked[session_id] = now
            horizon = now - self._lifetime.total_seconds()
            for old in [sid for sid, at in self._revoked.items() if at < horizon]:
                del self._revoked[old]
        if self._store is not None:
            try:
                self._store.revoke_session(session_id, self._lifetime)
            except Exception as exc:
                log.warning("cannot record a logout in the store: %s", type(exc).__name__)
                raise SessionUnavailable("the session store did not answer") from None

    def is_revoked(self, session_id: str) -> bool:
        with self._lock:
            if session_id in self._revoked:
                return True
        if self._store is None:
            return False
        try:
            revoked = self._store.session_revoked(session_id)
        except Exception as exc:
            log.warning("cannot check a session against the store: %s", type(exc).__name__)
            raise SessionUnavailable("the session store did not answer") from None
        if revoked:
            with self._lock:
                self._revoked.setdefault(session_id, self._clock())
        return revoked
