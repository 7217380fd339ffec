"""Exchange clients: one per account, reading its balances through ccxt (or its paper holdings).

`ExchangeRegistry`
owns what accounts share: one `ExchangeEndpoint` per (exchange, api_url, sandbox, options) and one
`CallGate` per API key on an endpoint (two accounts with one key share a gate, so their calls
never overlap either). ``_lock`` guards both dictionaries; endpoints are created on first use.
"""
from __future__ import annotations

import json
import threading
from decimal import Decimal
from typing import Callable, Mapping

from bot.config import AccountConfig, Settings
from bot.core.money import MONEY
from bot.core.pricing import ONE, to_decimal
from bot.exchanges.endpoint import ExchangeEndpoint, endpoint_key
from bot.exchanges.gate import CallGate
from bot.exchanges.quirks import private_min_interval
from bot.exchanges.wire import MalformedResponse, unalias  # MalformedResponse: public here too

PriceOf = Callable[[str], "Decimal | None"]


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

    def read(self) -> tuple[dict[str, Decimal], PriceOf]:
        return dict(self._balances), self._prices.get


class ExchangeClient:
    """A real account: ``read()`` makes one balance call with the account's key (never two at
    once, spaced by its gate), then values it with the endpoint's shared prices."""

    def __init__(self, account: AccountConfig, registry: ExchangeRegistry, base_currency: str):
        self.account = account
        self._registry = registry
        self._base = base_currency
        self._resolved: tuple[ExchangeEndpoint, CallGate] | None = None  # set once, by any reader

    def secret_values(self) -> tuple[str, ...]:
        return self.account.broker.credentials.values()

    def read(self) -> tuple[dict[str, Decimal], PriceOf]:
        if self._resolved is None:  # the registry returns the same pair to every caller
            self._resolved = self._registry.resolve(self.account)
        endpoint, gate = self._resolved
        credentials = self.account.broker.credentials
        with gate.lock:
            with endpoint.borrow(credentials, gate) as exchange:
                try:
                    balance = exchange.fetch_balance()
                except (TypeError, KeyError, ValueError, AttributeError, IndexError) as exc:
                    # ccxt's parsers fail this way on bodies that are not the expected JSON
                    raise MalformedResponse(f"unparseable balance response ({type(exc).__name__})") from exc
        amounts = parse_totals(balance)
        book = endpoint.price_book()
        base = self._base
        return amounts, lambda asset: book.price(asset, base)


class ExchangeRegistry:
    def __init__(self, settings: Settings):
        self._settings = settings
        self._lock = threading.Lock()
        self._endpoints: dict[tuple, ExchangeEndpoint] = {}
        self._gates: dict[tuple, CallGate] = {}

    def resolve(self, account: AccountConfig) -> tuple[ExchangeEndpoint, CallGate]:
        broker = account.broker
        key = (*endpoint_key(broker.exchange, broker.api_url, broker.sandbox),
               json.dumps(broker.options, sort_keys=True, default=str))
        with self._lock:
            endpoint = self._endpoints.get(key)
        if endpoint is None:
            endpoint = self._create_endpoint(key, broker.options)
        gate_key = (key, broker.credentials.api_key.fingerprint())
        with self._lock:
            gate = self._gates.get(gate_key)
            if gate is None:
                gate = self._gates[gate_key] = CallGate(private_min_interval(self._settings, broker.exchange),
                                                        rate_limit_ms=endpoint.rate_limit_ms)
        return endpoint, gate

    def _create_endpoint(self, key: tuple, options: Mapping) -> ExchangeEndpoint:
        exchange_id, api_url, sandbox, _ = key
        s = self._settings
        created = ExchangeEndpoint(exchange_id, api_url, sandbox, options=options,
                                   timeout_seconds=s.request_timeout_seconds,
                                   public_min_interval=s.public_min_interval(exchange_id),
                                   prices_ttl_seconds=s.cache_ttl_seconds,
                                   pool_connections=s.max_workers, price_pegs=s.price_pegs)
        with self._lock:
            endpoint = self._endpoints.setdefault(key, created)
        if endpoint is not created:
            created.close()
        return endpoint

    def endpoints(self) -> list[ExchangeEndpoint]:
        with self._lock:
            return list(self._endpoints.values())

    def close(self) -> None:
        for endpoint in self.endpoints():
            endpoint.close()


def build_client(account: AccountConfig, registry: ExchangeRegistry, base_currency: str):
    """The client for an account, or None when it has no credentials (``not_configured``)."""
    if account.broker.paper:
        return PaperClient(account, base_currency)
    if account.broker.credentials is None:
        return None
    return ExchangeClient(account, registry, base_currency)
