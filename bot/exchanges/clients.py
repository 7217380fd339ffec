"""Exchange clients: one per account, reading its balances through ccxt (or its paper holdings).

`ExchangeRegistry` owns what accounts share: one `ExchangeEndpoint` per (exchange, api_url,
sandbox, options), one `AddressBudget` per (exchange, host, egress address) shared by every
endpoint on that host, and one `KeyLane` per API key at a host (two accounts with one key share
a lane, so their calls never overlap either, whatever their options). ``_lock`` guards the
dictionaries (entries are created on first use, from any thread, without I/O); ``_key_lanes``
indexes the lanes by key fingerprint, so that continuing or reading one key's floors (nonce, last
call, counter level) costs the same with 20,000 keys as with one; ``_continued`` keeps the floors
given by `continue_key` for lanes made later. A client's ``read()`` is a coroutine for the fetch
loop.
"""
from __future__ import annotations

import json
import threading
from decimal import Decimal
from typing import Callable, Mapping

from bot.config import AccountConfig, Settings
from bot.core.money import MONEY
from bot.core.pricing import ONE, to_decimal
from bot.exchanges.budget import AddressBudget
from bot.exchanges.endpoint import ExchangeEndpoint, endpoint_key
from bot.exchanges.errors import MalformedResponse, RateLimited
from bot.exchanges.lane import KeyLane
from bot.exchanges.limits import ExchangeLimits, effective_limits
from bot.exchanges.wire import unalias

PriceOf = Callable[[str], "Decimal | None"]
__all__ = ["MalformedResponse", "RateLimited", "parse_totals", "PaperClient", "ExchangeClient",
           "ExchangeRegistry", "build_client"]


def parse_totals(balance: object) -> dict[str, Decimal]:
    """Total amount per asset from a ccxt balance structure read by a `make_exact` instance.

    Amounts are the exchange's own digits (strings, see `bot.exchanges.wire`); entries of one
    asset under several exchange ids are summed; a missing, non-numeric or negative amount
    raises `MalformedResponse` naming the asset."""
    if not isinstance(balance, Mapping) or not isinstance(balance.get("info"), (Mapping, list)):
        # ccxt hands a body it could not parse as JSON on as the raw text ("info")
        raise MalformedResponse("balance response is not JSON")
    totals = balance.get("total")
    if not isinstance(totals, Mapping):
        raise MalformedResponse("balance response has no totals")
    amounts: dict[str, Decimal] = {}
    for key, raw in totals.items():
        asset = unalias(str(key))
        amount = _amount(balance, key, raw)
        if amount is None:
            raise MalformedResponse(f"amount of {asset} is not a number: {str(raw)[:40]!r}")
        if amount < 0:
            raise MalformedResponse(f"negative amount of {asset}: {str(raw)[:40]}")
        amounts[asset] = MONEY.add(amounts[asset], amount) if asset in amounts else amount
    return amounts


def _amount(balance: Mapping, key, raw) -> Decimal | None:
    """The total of one entry: ``total``, else free + used (exactly)."""
    if raw is not None:
        return to_decimal(raw)
    entry = balance.get(key)
    raw_free, raw_used = (entry.get("free"), entry.get("used")) if isinstance(entry, Mapping) else (None, None)
    if raw_free is None and raw_used is None:
        raise MalformedResponse(f"no amount for {unalias(str(key))}")
    free, used = to_decimal(raw_free), to_decimal(raw_used)
    if (raw_free is not None and free is None) or (raw_used is not None and used is None):
        return None
    return MONEY.add(free or 0, used or 0)


class PaperClient:
    """A simulated account: the configured balances, priced by the configured prices."""

    def __init__(self, account: AccountConfig, base_currency: str):
        self.account = account
        self._balances = dict(account.broker.balances)
        self._prices = dict(account.broker.prices)
        self._prices[base_currency] = ONE

    def secret_values(self) -> tuple[str, ...]:
        return ()

    async def read(self, max_wait: float | None = None) -> tuple[dict[str, Decimal], PriceOf]:
        return dict(self._balances), self._prices.get


class ExchangeClient:
    """A real account: ``read()`` makes one balance call with the account's key (never two at
    once, spaced by its lane, paced by its host's budget), then values it with the endpoint's
    shared prices. ``max_wait``: how long the read may wait on a paused host (else `RateLimited`)."""

    __slots__ = ("account", "_base", "endpoint", "lane")

    def __init__(self, account: AccountConfig, registry: ExchangeRegistry, base_currency: str):
        self.account = account
        self._base = base_currency
        self.endpoint, self.lane = registry.resolve(account)

    def secret_values(self) -> tuple[str, ...]:
        return self.account.broker.credentials.values()

    async def read(self, max_wait: float | None = None) -> tuple[dict[str, Decimal], PriceOf]:
        endpoint, lane = self.endpoint, self.lane
        async with lane.lock, endpoint.budget.slots:  # one read per key; reads in flight per host bounded
            exchange = await endpoint.take(self.account.broker.credentials, lane, max_wait)
            try:
                balance = await exchange.fetch_balance()
            except (TypeError, KeyError, ValueError, AttributeError, IndexError) as exc:
                # ccxt's parsers fail this way on bodies that are not the expected JSON
                raise MalformedResponse(f"unparseable balance response ({type(exc).__name__})") from exc
            finally:
                endpoint.give_back(exchange)
            amounts = parse_totals(balance)
            book = endpoint.fresh_book() or await endpoint.price_book(max_wait)
        base = self._base
        return amounts, lambda asset: book.price(asset, base)


class ExchangeRegistry:
    def __init__(self, settings: Settings, time_scale: float = 1.0):
        """``time_scale`` divides every duration of the exchanges' limits (for tests against
        time-scaled fakes)."""
        self._settings = settings
        self._time_scale = time_scale
        self._source_address = settings.fetch.source_address
        self._lock = threading.Lock()
        self._endpoints: dict[tuple, ExchangeEndpoint] = {}
        self._budgets: dict[tuple, AddressBudget] = {}
        self._lanes: dict[tuple, KeyLane] = {}
        self._key_lanes: dict[str, list[KeyLane]] = {}  # fingerprint -> its lanes (lock)
        self._limits: dict[str, ExchangeLimits] = {}
        self._continued: dict[str, tuple[int | None, float | None, float | None]] = {}  # fingerprint -> floors (lock)

    def limits(self, exchange_id: str, rate_limit_ms: float) -> ExchangeLimits:
        with self._lock:
            found = self._limits.get(exchange_id)
            if found is None:
                found = self._limits[exchange_id] = effective_limits(exchange_id, self._settings, rate_limit_ms,
                                                                     self._time_scale)
            return found

    def budget(self, limits: ExchangeLimits, host: str) -> AddressBudget:
        key = (limits.exchange, host, self._source_address)
        with self._lock:
            found = self._budgets.get(key)
            if found is None:
                found = self._budgets[key] = AddressBudget(limits, host, self._source_address,
                                                           self._settings.max_workers, self._time_scale,
                                                           self._settings.timezone)
            return found

    def resolve(self, account: AccountConfig) -> tuple[ExchangeEndpoint, KeyLane]:
        broker = account.broker
        key = (*endpoint_key(broker.exchange, broker.api_url, broker.sandbox),
               json.dumps(broker.options, sort_keys=True, default=str))
        with self._lock:
            endpoint = self._endpoints.get(key)
        if endpoint is None:
            endpoint = self._create_endpoint(key, broker.options)
        limits = endpoint.limits
        lane_key = (broker.exchange, endpoint.host, self._source_address, broker.credentials.api_key.fingerprint())
        with self._lock:
            lane = self._lanes.get(lane_key)
            if lane is None:
                lane = self._lanes[lane_key] = KeyLane(limits.key_interval, rate_limit_ms=endpoint.rate_limit_ms,
                                                       counter=limits.key_counter)
                self._key_lanes.setdefault(lane_key[-1], []).append(lane)
                lane.continue_from(*self._continued.get(lane_key[-1], (None, None, None)))
            lane.accounts += 1
            endpoint.budget.accounts += 1
        return endpoint, lane

    def continue_key(self, fingerprint: str, nonce_floor: int | None, last_call_at: float | None,
                     counter_level: float | None = None) -> None:
        """The key of ``fingerprint`` was read by another process: its lanes (now and later ones)
        continue its nonces, spacing and call counter (`KeyLane.continue_from`)."""
        with self._lock:
            self._continued[fingerprint] = (nonce_floor, last_call_at, counter_level)
            lanes = list(self._key_lanes.get(fingerprint, ()))
        for lane in lanes:
            lane.continue_from(nonce_floor, last_call_at, counter_level)

    def key_floors(self, fingerprint: str) -> tuple[int | None, float | None, float | None]:
        """(highest nonce, end of the last call, modelled counter level right after a last call:
        the highest of the key's lanes) of the key of ``fingerprint`` in this process, None where
        it made none (the level: or has no counter)."""
        with self._lock:
            lanes = list(self._key_lanes.get(fingerprint, ()))
        nonces = [lane.last_nonce for lane in lanes if lane.last_nonce]
        calls = [lane.last_call_at for lane in lanes if lane.last_call_at is not None]
        levels = [lane.last_level for lane in lanes if lane.last_level is not None]
        return (max(nonces) if nonces else None), (max(calls) if calls else None), (max(levels) if levels else None)

    def key_level(self, fingerprint: str) -> float | None:
        """The key's modelled counter level now (the highest of its lanes; None: no counter), on
        the thread of the loop that reads with the key (`KeyLane.level` is loop-only)."""
        with self._lock:
            lanes = list(self._key_lanes.get(fingerprint, ()))
        levels = [level for level in (lane.level() for lane in lanes) if level is not None]
        return max(levels) if levels else None

    def _create_endpoint(self, key: tuple, options: Mapping) -> ExchangeEndpoint:
        exchange_id, api_url, sandbox, _ = key
        s = self._settings
        created = ExchangeEndpoint(exchange_id, api_url, sandbox, options=options,
                                   limits_for=lambda rate_limit_ms: self.limits(exchange_id, rate_limit_ms),
                                   budget_for=self.budget,
                                   timeout_seconds=s.request_timeout_seconds, prices_ttl_seconds=s.cache_ttl_seconds,
                                   price_pegs=s.price_pegs, source_address=self._source_address,
                                   max_response_bytes=s.fetch.max_response_bytes)
        with self._lock:
            return self._endpoints.setdefault(key, created)

    def endpoints(self) -> list[ExchangeEndpoint]:
        with self._lock:
            return list(self._endpoints.values())

    def budgets(self) -> list[AddressBudget]:
        with self._lock:
            return list(self._budgets.values())

    def lanes(self) -> list[tuple[str, KeyLane]]:
        """(exchange id, lane) of every API key."""
        with self._lock:
            return [(key[0], lane) for key, lane in self._lanes.items()]

    async def aclose(self) -> None:
        for endpoint in self.endpoints():
            await endpoint.aclose()


def build_client(account: AccountConfig, registry: ExchangeRegistry, base_currency: str):
    """The client for an account, or None when it has no credentials (``not_configured``)."""
    if account.broker.paper:
        return PaperClient(account, base_currency)
    if account.broker.credentials is None:
        return None
    return ExchangeClient(account, registry, base_currency)
