"""One exchange at one address: shared markets, shared prices and a pool of ccxt instances.

An `ExchangeEndpoint` is keyed by (ccxt id, ``api_url``, ``sandbox``) and shared by every
account on it. Markets are loaded once and tickers once per TTL, through one public ccxt
instance whose calls are sequential and spaced (its own `CallGate`). Private reads borrow a
pooled ccxt instance, bind it to the account's credentials and `CallGate` for the duration of
one read, and give it back: the pool holds as many instances as reads ever ran at once, not one
per account, and each shares the public instance's market tables by reference
(``set_markets_from_exchange``, which does not copy). Pooled instances parse balances exactly
(`bot.exchanges.wire.make_exact`: the exchange's digits, duplicate keys refused, aliases kept).

Locks: ``_public_lock`` guards the public instance, the markets flag and the price book (public
calls are sequential); ``_markets_lock`` is where readers of a cold endpoint wait while one of
them loads the markets; ``_pool_lock`` guards ``_idle``. ccxt instances are never used by two threads at once.
"""
from __future__ import annotations

import copy
import logging
import threading
import time
from contextlib import contextmanager
from typing import Any, Iterator, Mapping

import ccxt
import requests
from requests.adapters import HTTPAdapter

from bot.exchanges.quirks import DEFAULT_OPTIONS
from bot.exchanges.urls import point_exchange_at
from bot.exchanges.wire import begin_read, make_exact
from bot.core.pricing import PriceBook
from bot.exchanges.gate import CallGate
from bot.core.secrets import Credentials, ccxt_logger

log = logging.getLogger(__name__)

def endpoint_key(exchange_id: str, api_url: str | None, sandbox: bool) -> tuple[str, str | None, bool]:
    return (exchange_id, api_url.rstrip("/") if api_url else None, bool(sandbox))


class ExchangeEndpoint:
    def __init__(self, exchange_id: str, api_url: str | None = None, sandbox: bool = False,
                 options: Mapping[str, Any] | None = None, timeout_seconds: float = 10.0,
                 public_min_interval: float | None = None, prices_ttl_seconds: float = 120.0,
                 pool_connections: int = 16, price_pegs: Mapping[str, str] | None = None):
        self.exchange_id = exchange_id
        self.api_url = api_url
        self.sandbox = sandbox
        self._options = {**DEFAULT_OPTIONS.get(exchange_id, {}), **(options or {})}
        self._timeout_ms = int(timeout_seconds * 1000)
        self._prices_ttl = prices_ttl_seconds
        self._pegs = dict(price_pegs or {})
        self._session = requests.Session()
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=pool_connections)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        self._markets_lock = threading.Lock()
        self._public_lock = threading.Lock()
        self._public = self._new_instance()
        self.rate_limit_ms = float(self._public.rateLimit or 0)
        self._public_gate = CallGate(public_min_interval, rate_limit_ms=self.rate_limit_ms)
        self._bind(self._public, self._public_gate)
        self._markets_loaded = False
        self._book: PriceBook | None = None
        self._book_at = 0.0
        self._pool_lock = threading.Lock()
        self._idle: list[ccxt.Exchange] = []
        self.instances_created = 1

    # ------------------------------------------------------------------ ccxt instances

    def _new_instance(self) -> ccxt.Exchange:
        exchange = getattr(ccxt, self.exchange_id)({
            "enableRateLimit": True,  # ccxt calls throttle(cost) before each request: ours spaces them
            "timeout": self._timeout_ms,
            "options": copy.deepcopy(self._options),
            "session": self._session,
            "logger": ccxt_logger(),
        })
        if self.sandbox:
            exchange.set_sandbox_mode(True)
        if self.api_url:
            point_exchange_at(exchange, self.api_url)
        return exchange

    @staticmethod
    def _bind(exchange: ccxt.Exchange, gate: CallGate) -> None:
        """Route the instance's throttle, request completion and nonces through ``gate``."""
        exchange._multibalance_gate = gate
        if getattr(exchange, "_multibalance_wrapped", False):
            return
        exchange._multibalance_wrapped = True
        plain_fetch, plain_nonce = exchange.fetch, exchange.nonce

        def fetch(url, method="GET", headers=None, body=None):
            try:
                return plain_fetch(url, method, headers, body)
            finally:
                exchange._multibalance_gate.completed()

        def nonce():
            return exchange._multibalance_gate.next_nonce(plain_nonce())

        exchange.fetch = fetch
        exchange.throttle = lambda cost=None: exchange._multibalance_gate.throttle(cost)
        exchange.nonce = nonce
        exchange.incrementing_nonce = nonce

    # ------------------------------------------------------------------ public data

    def ensure_markets(self) -> None:
        """Load markets once (retried on the next read if it failed). Raises ccxt errors."""
        if self._markets_loaded:
            return
        with self._markets_lock:  # waiters queue here, not on the public lock that prices also take
            if not self._markets_loaded:
                with self._public_lock:
                    self._ensure_markets_locked()

    def price_book(self) -> PriceBook:
        """Last prices, fetched at most once per TTL. On failure the previous book is reused
        if there is one (logged), else the error propagates."""
        with self._public_lock:
            if self._book is not None and time.monotonic() - self._book_at < self._prices_ttl:
                return self._book
            try:
                self._ensure_markets_locked()
                book = PriceBook.from_tickers(self._public.fetch_tickers(), self._pegs)
            except Exception as exc:
                if self._book is None:
                    raise
                log.warning("%s: prices not refreshed (%s); using prices from %.0f s ago",
                            self.exchange_id, type(exc).__name__, time.monotonic() - self._book_at)
                return self._book
            self._book, self._book_at = book, time.monotonic()
            return book

    def _ensure_markets_locked(self) -> None:
        if not self._markets_loaded:
            self._public.load_markets()
            self._markets_loaded = True

    # ------------------------------------------------------------------ private reads

    @contextmanager
    def borrow(self, credentials: Credentials, gate: CallGate) -> Iterator[ccxt.Exchange]:
        """A ccxt instance bound to ``credentials`` and ``gate`` for one read (hold ``gate.lock``)."""
        self.ensure_markets()
        with self._pool_lock:
            exchange = self._idle.pop() if self._idle else None
        if exchange is None:
            exchange = self._new_instance()
            exchange.set_markets_from_exchange(self._public)
            make_exact(exchange)  # amounts as the exchange's strings, duplicate keys refused
            exchange._multibalance_options = dict(exchange.options)
            with self._pool_lock:
                self.instances_created += 1
        exchange.apiKey = credentials.api_key.reveal()
        exchange.secret = credentials.api_secret.reveal()
        exchange.password = credentials.passphrase.reveal() if credentials.passphrase else None
        self._bind(exchange, gate)
        begin_read(exchange)
        try:
            yield exchange
        finally:
            exchange.apiKey = exchange.secret = exchange.password = None
            exchange._multibalance_gate = None
            # per-credential state ccxt keeps in options (e.g. binance's
            # hasAlreadyAuthenticatedSuccessfully) must not follow the instance to another key
            exchange.options.clear()
            exchange.options.update(exchange._multibalance_options)
            with self._pool_lock:
                self._idle.append(exchange)

    def close(self) -> None:
        self._session.close()
