"""Real ccxt clients pointed at the loopback fakes, and the fixtures the fake-exchange tests share.

``make_client(fake, creds)`` builds ``ccxt.<fake.name>`` with the fake module's ``CCXT_OPTIONS``,
its REST URLs rewritten to the fake (as the product does with ``api_url``); ``private_client``
adds an account first. Clients with keys on a strictly-nonced fake (Kraken) get an ``MsNonce``,
like the product's override. Nothing here waits with sleeps: ``wait_for`` polls the fake's state.

Fixtures: ``fake_fixtures(FakeX, scope)`` makes ``fake_server``, ``fake`` and ``public`` for one
exchange's test module; ``FakePool`` serves several fake classes to one module
(``tests/test_fakes_common.py``), one started server each, reset before every hand-out.
"""
from __future__ import annotations

import importlib
import threading
import time
from typing import Callable, Optional

import ccxt
import pytest

from bot.exchanges.urls import point_exchange_at

from .base import VIOLATION_NAMES, FakeExchange

__all__ = [
    "DEFAULT_TIMEOUT_MS", "MsNonce", "ccxt_options", "make_client", "load_public", "private_client",
    "paths", "violations_with", "wait_for", "reset_fake", "fake_fixtures",
    "FakePool",
]

#: ccxt ``timeout`` (ms) of a client unless a test asks for another
DEFAULT_TIMEOUT_MS = 5000


class MsNonce:
    """Strictly increasing millisecond nonce, like the product's per-key override. One instance
    may be shared by several clients of one key."""

    def __init__(self):
        self.last = 0
        self.lock = threading.Lock()

    def __call__(self):
        with self.lock:
            self.last = max(self.last + 1, int(time.time() * 1000))
            return self.last


def ccxt_options(fake: FakeExchange) -> dict:
    """A copy of the ``CCXT_OPTIONS`` of the module defining ``fake``'s class."""
    return dict(importlib.import_module(type(fake).__module__).CCXT_OPTIONS)


def make_client(fake: FakeExchange, creds: Optional[dict] = None, *, public=None,
                timeout: int = DEFAULT_TIMEOUT_MS, nonce: Optional[Callable] = None, **config):
    """``ccxt.<fake.name>`` pointed at ``fake``; ccxt's own rate limiter off.

    ``creds``: {"api_key", "api_secret"[, "passphrase"]} as ``add_account`` returns them.
    ``public``: a client whose markets this one shares (no load_markets of its own).
    ``nonce``: installed as the client's ``nonce``; by default a keyed client of a fake with
    ``nonce_strict`` gets a fresh ``MsNonce``. ``config``: more ccxt constructor settings."""
    settings = {"timeout": timeout, "enableRateLimit": False, "options": ccxt_options(fake)}
    if creds is not None:
        settings.update(apiKey=creds["api_key"], secret=creds["api_secret"],
                        password=creds.get("passphrase"))
        if nonce is None and fake.nonce_strict:
            nonce = MsNonce()
    settings.update(config)
    ex = getattr(ccxt, fake.name)(settings)
    point_exchange_at(ex, fake.url)
    if nonce is not None:
        ex.nonce = nonce
    if public is not None:
        ex.set_markets_from_exchange(public)
    return ex


def load_public(fake: FakeExchange):
    """A keyless client of ``fake`` with its markets loaded."""
    ex = make_client(fake)
    ex.load_markets()
    return ex


def private_client(fake: FakeExchange, public, balances: dict, account: Optional[dict] = None,
                   **client):
    """(creds, client): a new account holding ``balances`` (``account``: more ``add_account``
    arguments, e.g. Coinbase's scheme) and a client of it sharing ``public``'s markets."""
    creds = fake.add_account(dict(balances), **(account or {}))
    return creds, make_client(fake, creds, public=public, **client)


def paths(fake: FakeExchange) -> list:
    """[(kind, path)] of the requests the fake has recorded, in order."""
    return [(c.kind, c.path) for c in fake.calls]


def violations_with(**counts) -> dict:
    """The full violations dict a fake should show: ``counts``, every other counter 0."""
    return {**dict.fromkeys(VIOLATION_NAMES, 0), **counts}


def wait_for(predicate: Callable[[], bool], timeout: float = 2.0) -> None:
    """Poll a condition on the fake's state until it holds (not a sleep used as
    synchronisation: it returns as soon as the state is reached)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        threading.Event().wait(0.002)


def reset_fake(fake: FakeExchange) -> FakeExchange:
    """Back to a started fake's defaults between tests: no latency, spacing or faults, default
    timeout hold, limits off with their state forgotten (real clock, time scale 1, default
    tables and tier), counters and call records zeroed (accounts, balances and prices are
    kept)."""
    fake.latency = 0.0
    fake.min_interval = 0.0
    fake.public_min_interval = 0.0
    fake.timeout_delay = 3.0
    fake.trickle_interval = 0.1
    fake.huge_body_size = 20 * 1024 * 1024
    fake.clear_faults()
    fake.reset_limits(defaults=True)
    fake.reset_counters()
    return fake


def fake_fixtures(fake_class: type, scope: str = "function"):
    """The fixtures of one exchange's test module; bind all three at module level::

        fake_server, fake, public = fake_fixtures(FakeBinance, scope="module")

    ``fake_server``: a started ``fake_class()`` (one per test, or per module with
    scope="module"); ``fake``: that server, reset by ``reset_fake`` before each test when it is
    shared; ``public``: a keyless client of it with markets loaded (same scope as the server,
    loaded before ``fake`` resets the counters)."""

    @pytest.fixture(scope=scope, name="fake_server")
    def fake_server_fixture():
        with fake_class() as server:
            yield server

    @pytest.fixture(scope=scope, name="public")
    def public_fixture(fake_server):
        return load_public(fake_server)

    @pytest.fixture(name="fake")
    def fake_fixture(fake_server):
        return fake_server if scope == "function" else reset_fake(fake_server)

    return fake_server_fixture, fake_fixture, public_fixture


class FakePool:
    """Started fakes shared by the tests of one module: one server per fake class, started on
    first use, reset by ``reset_fake`` at every ``fake()``; one keyless client per class with its
    markets loaded. ``close()`` stops them all."""

    def __init__(self):
        self._fakes: dict = {}
        self._publics: dict = {}

    def _server(self, fake_class: type) -> FakeExchange:
        server = self._fakes.get(fake_class)
        if server is None:
            server = self._fakes[fake_class] = fake_class().start()
        return server

    def fake(self, fake_class: type) -> FakeExchange:
        return reset_fake(self._server(fake_class))

    def public(self, fake_class: type):
        client = self._publics.get(fake_class)
        if client is None:
            client = self._publics[fake_class] = load_public(self._server(fake_class))
        return client

    def close(self) -> None:
        for server in self._fakes.values():
            server.stop()
        self._fakes.clear()
        self._publics.clear()
