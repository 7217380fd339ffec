"""One exchange at one address with one options set: shared markets, prices and ccxt instances.

An `ExchangeEndpoint` is keyed by (ccxt id, ``api_url``, ``sandbox``, options) and shared by every
account on it; its calls spend the `AddressBudget` of its host and egress address, which every
endpoint on that host shares. Markets are loaded once and tickers once per TTL through one public
``ccxt.async_support`` instance whose calls are sequential (its own `KeyLane`). Private reads
`take` a pooled instance, bound for one read to the account's credentials and lane, and
`give_back` it: the pool holds as many instances as reads ever ran at once; each shares the public
instance's market tables by reference (``set_markets_from_exchange`` does not copy). Every
instance's ``fetch2`` waits for its lane and budget before ccxt signs (so nonces and timestamps
are fresh), and its ``fetch`` is `bounded_fetch` on the endpoint's aiohttp session. Pooled
instances parse balances exactly (`bot.exchanges.wire.make_exact`: the exchange's digits,
duplicate keys refused, aliases kept).

Loop-only: instances, the pool, the markets flag, the price book and the session are touched only
on the fetch loop's thread; construction (no I/O) may happen on any thread.
"""
from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass
from typing import Any, Mapping
from urllib.parse import urlsplit

import ccxt.async_support as ccxt_async

from bot.core.pricing import PriceBook
from bot.core.secrets import Credentials, ccxt_logger
from bot.exchanges.budget import AddressBudget
from bot.exchanges.http import DEFAULT_MAX_RESPONSE_BYTES, bounded_fetch, new_session
from bot.exchanges.lane import KeyLane
from bot.exchanges.limits import ExchangeLimits
from bot.exchanges.quirks import DEFAULT_OPTIONS
from bot.exchanges.urls import point_exchange_at
from bot.exchanges.wire import begin_read, make_exact

log = logging.getLogger(__name__)


def endpoint_key(exchange_id: str, api_url: str | None, sandbox: bool) -> tuple[str, str | None, bool]:
    return (exchange_id, api_url.rstrip("/") if api_url else None, bool(sandbox))


@dataclass
class Binding:
    """What an instance is bound to for one read: the key's lane, whether its calls are private
    (their refusals may be per key) and how long it may wait on a paused host (None: however long)."""

    lane: KeyLane
    private: bool
    max_wait: float | None = None


def first_url(api_urls) -> str | None:
    if isinstance(api_urls, str):
        return api_urls
    if isinstance(api_urls, dict):
        for value in api_urls.values():
            found = first_url(value)
            if found:
                return found
    return None


def new_instance(exchange_id: str, api_url: str | None, sandbox: bool, options: Mapping, timeout_ms: int):
    """A ``ccxt.async_support`` instance of ``exchange_id``, pointed at ``api_url`` (no I/O)."""
    exchange = getattr(ccxt_async, exchange_id)({
        "enableRateLimit": False,  # the lanes and budgets pace every call (see fetch2 below)
        "timeout": timeout_ms,
        "options": copy.deepcopy(dict(options)),
        "logger": ccxt_logger(),
    })
    if sandbox:
        exchange.set_sandbox_mode(True)
    if api_url:
        point_exchange_at(exchange, api_url)
    return exchange


def api_host(exchange) -> str:
    """The host (netloc) of an instance's main REST URL: what its budget is keyed by."""
    url = first_url(exchange.urls.get("api")) or ""
    url = exchange.implode_hostname(url) if "{hostname}" in url else url
    return urlsplit(url).netloc or exchange.id


class ExchangeEndpoint:
    def __init__(self, exchange_id: str, api_url: str | None = None, sandbox: bool = False,
                 options: Mapping[str, Any] | None = None, *, limits_for, budget_for, timeout_seconds: float = 10.0, prices_ttl_seconds: float = 120.0,
                 price_pegs: Mapping[str, str] | None = None, source_address: str | None = None,
                 max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES):
        """``limits_for(rate_limit_ms)`` gives the exchange's `ExchangeLimits` (ccxt's rateLimit is
        the fallback); ``budget_for(limits, host)`` the shared `AddressBudget` of a host."""
        self.exchange_id = exchange_id
        self.api_url = api_url
        self.sandbox = sandbox
        self._options = {**DEFAULT_OPTIONS.get(exchange_id, {}), **(options or {})}
        self._timeout = float(timeout_seconds)
        self._max_bytes = int(max_response_bytes)
        self._prices_ttl = prices_ttl_seconds
        self._pegs = dict(price_pegs or {})
        self._source_address = source_address
        self._session = None
        self._public = self._new_instance()
        self.rate_limit_ms = float(self._public.rateLimit or 0)
        self.limits: ExchangeLimits = limits_for(self.rate_limit_ms)
        self.host = api_host(self._public)
        self.budget: AddressBudget = budget_for(self.limits, self.host)
        self._public_lane = KeyLane(0.0)
        self._bind(self._public, Binding(self._public_lane, private=False))
        self._markets_loaded = False
        self._book: PriceBook | None = None
        self._book_at = 0.0
        self._idle: list = []
        self._rest_paths: dict[tuple, str] = {}
        self.instances_created = 1

    # ------------------------------------------------------------------ ccxt instances

    def _new_instance(self):
        return new_instance(self.exchange_id, self.api_url, self.sandbox, self._options, int(self._timeout * 1000))

    def session(self):
        if self._session is None:
            self._session = new_session(self._source_address)
        return self._session

    def rest_path(self, exchange, api, path: str) -> str:
        """The REST path of a ccxt call (``/api/v3/account``), for the limits table (remembered
        per (api, path): every instance of the endpoint has the same URLs)."""
        key = (api if isinstance(api, str) else tuple(api), path)
        found = self._rest_paths.get(key)
        if found is None:
            found = self._rest_paths[key] = self._rest_path(exchange, api, path)
        return found

    def _rest_path(self, exchange, api, path: str) -> str:
        name = api if isinstance(api, str) else "/".join(api)
        if self.limits.rest_prefix is not None:
            return self.limits.rest_prefix.format(api=name) + path
        urls = exchange.urls.get("api")
        base = urls.get(name) if isinstance(urls, dict) else urls
        if isinstance(base, str):
            return urlsplit(base).path.rstrip("/") + "/" + path
        return "/" + path

    def _bind(self, exchange, binding: Binding) -> None:
        """Route the instance's calls through its binding's lane, the budget and `bounded_fetch`."""
        exchange._multibalance = binding
        if getattr(exchange, "_multibalance_wrapped", False):
            return
        exchange._multibalance_wrapped = True
        plain_fetch2, plain_nonce = exchange.fetch2, exchange.nonce
        budget, limits = self.budget, self.limits

        async def fetch2(path, api="public", method="GET", params={}, config={}):
            bound = exchange._multibalance
            lane = bound.lane
            rest = self.rest_path(exchange, api, path)
            cost, key_cost = config.get("cost", 1) if isinstance(config, dict) else 1, limits.key_cost(rest)
            if not lane.go_now(cost, key_cost):  # the common case costs no coroutine
                await lane.before(cost, key_cost)
            try:
                public = not bound.private
                if not budget.unpaced(public):
                    await budget.acquire(limits.weight(rest, params), public, bound.max_wait)
                try:
                    return await plain_fetch2(path, api, method, params, config)
                finally:
                    if public and budget.spaces_public:
                        budget.public_done()
            finally:
                lane.completed()

        async def fetch(url, method="GET", headers=None, body=None):
            bound = exchange._multibalance

            def observe(status, response_headers, payload):
                budget.observe(status, response_headers, payload, bound.private, bound.lane)
                if status < 400:
                    bound.lane.succeeded()

            await budget.before_send(bound.max_wait)  # signing and the loop may have taken a while
            return await bounded_fetch(exchange, self.session(), url, method, headers, body,
                                       self._timeout, self._max_bytes, observe)

        def nonce():
            return exchange._multibalance.lane.next_nonce(plain_nonce())

        exchange.fetch2 = fetch2
        exchange.fetch = fetch
        exchange.nonce = nonce
        exchange.incrementing_nonce = nonce

    # ------------------------------------------------------------------ public data

    async def ensure_markets(self, max_wait: float | None = None) -> None:
        """Load markets once (retried on the next read if it failed). Raises ccxt errors."""
        if self._markets_loaded:
            return
        async with self._public_lane.lock:  # readers of a cold endpoint wait here for one load
            if not self._markets_loaded:
                self._public._multibalance.max_wait = max_wait
                await self._public.load_markets()
                self._markets_loaded = True

    async def price_book(self, max_wait: float | None = None) -> PriceBook:
        """Last prices, fetched at most once per TTL. On failure the previous book is reused if
        there is one (logged), else the error propagates."""
        if self._book is not None and time.monotonic() - self._book_at < self._prices_ttl:
            return self._book
        async with self._public_lane.lock:
            if self._book is not None and time.monotonic() - self._book_at < self._prices_ttl:
                return self._book
            try:
                self._public._multibalance.max_wait = max_wait
                if not self._markets_loaded:
                    await self._public.load_markets()
                    self._markets_loaded = True
                book = PriceBook.from_tickers(await self._public.fetch_tickers(), self._pegs)
            except Exception as exc:
                if self._book is None:
                    raise
                log.warning("%s: prices not refreshed (%s); using prices from %.0f s ago",
                            self.exchange_id, type(exc).__name__, time.monotonic() - self._book_at)
                return self._book
            self._book, self._book_at = book, time.monotonic()
            return book

    def fresh_book(self) -> PriceBook | None:
        """The price book if it is younger than the TTL, else None (then await `price_book`)."""
        if self._book is not None and time.monotonic() - self._book_at < self._prices_ttl:
            return self._book
        return None

    # ------------------------------------------------------------------ private reads

    async def take(self, credentials: Credentials, lane: KeyLane, max_wait: float | None):
        """An instance bound to ``credentials`` and ``lane`` for one read (hold ``lane.lock``);
        hand it back with `give_back` whatever happens."""
        if not self._markets_loaded:
            await self.ensure_markets(max_wait)
        exchange = self._idle.pop() if self._idle else None
        if exchange is None:
            exchange = self._new_instance()
            exchange.set_markets_from_exchange(self._public)
            make_exact(exchange)  # amounts as the exchange's strings, duplicate keys refused
            exchange._multibalance_options = dict(exchange.options)
            self.instances_created += 1
        exchange.apiKey = credentials.api_key.reveal()
        exchange.secret = credentials.api_secret.reveal()
        exchange.password = credentials.passphrase.reveal() if credentials.passphrase else None
        self._bind(exchange, Binding(lane, private=True, max_wait=max_wait))
        begin_read(exchange)
        return exchange

    def give_back(self, exchange) -> None:
        """Unbind an instance from its read's credentials and return it to the pool."""
        exchange.apiKey = exchange.secret = exchange.password = None
        exchange._multibalance = None
        # per-credential state ccxt keeps in options (e.g. binance's
        # hasAlreadyAuthenticatedSuccessfully) must not follow the instance to another key
        exchange.options.clear()
        exchange.options.update(exchange._multibalance_options)
        self._idle.append(exchange)

    async def aclose(self) -> None:
        """Close the session (the instances own none: nothing else to release)."""
        for exchange in [self._public, *self._idle]:
            exchange.session = None  # ccxt's own session was never opened
        session, self._session = self._session, None
        if session is not None:
            await session.close()
