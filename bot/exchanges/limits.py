"""Every exchange's request limits as data, and the effective limits of one exchange.

What the exchanges document (REST, spot, the calls this product makes):

| exchange | per egress address (IP), shared by every key and public call | per API key |
| --- | --- | --- |
| binance  | 6,000 weight per clock minute, all calls; ``/api/v3/account`` 20, ``exchangeInfo`` 20, ``ticker/24hr`` 80 without a symbol (2 with one); usage in ``X-MBX-USED-WEIGHT-1M``; 429 + Retry-After, then 418 bans | — |
| kraken   | public calls: 1 per second | a call counter: +1 per call (Ledgers, QueryLedgers, TradesHistory +2), decaying; starter max 15 / -0.33 s⁻¹, intermediate 20 / -0.5, pro 20 / -1 |
| okx      | public tickers / instruments: 20 per 2 s | ``account/balance``: 10 per 2 s |
| coinbase | public: 10 per second | private: 30 per second |
| bybit    | 600 requests per 5 s, all calls; usage in ``X-Bapi-Limit-Status`` | — |
| others   | public calls spaced by ccxt's ``rateLimit`` | calls spaced by ``rateLimit`` × the endpoint's cost |

`ExchangeLimits` is what one exchange gets after ``settings.rate_limits`` and a test ``time_scale``
(every duration divided by it) are applied (`effective_limits`): ``weight_per_minute`` replaces
the address budget (or adds one of weight 1 a call), ``public_min_interval_seconds`` the public
spacing (0: none), ``min_interval_seconds`` the per-key model (spacing only, no counter, unless
``tier`` is given too), ``tier`` Kraken's counter. Immutable values only.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Mapping

#: fraction of a documented limit the pacing plans to use (clock skew, jitter, other callers)
HEADROOM = 0.95


@dataclass(frozen=True)
class KeyCounter:
    """Kraken's per-key call counter: +cost per call, at most ``maximum``, decaying."""

    maximum: float
    decay_per_second: float


KRAKEN_TIERS: dict[str, KeyCounter] = {
    "starter": KeyCounter(15.0, 0.33),
    "intermediate": KeyCounter(20.0, 0.5),
    "pro": KeyCounter(20.0, 1.0),
}
DEFAULT_TIER = "starter"


@dataclass(frozen=True)
class PathWeight:
    """The weight of one REST path: ``base`` without a symbol; ``with_symbol`` for one symbol."""

    base: int
    with_symbol: int | None = None


@dataclass(frozen=True)
class ExchangeLimits:
    """The limits of one exchange, in real seconds.

    Address budget (per host and egress address, every key and public call): ``weight_limit``
    weight per ``window_seconds`` (None: none), ``aligned`` when the exchange counts fixed
    windows on the clock (Binance's minute), ``weights`` per REST path (default 1 a call),
    ``usage_header`` the response header carrying the address's used weight. ``public_interval``:
    seconds between two public calls of one address (None: none). Per key: ``key_interval``
    seconds between calls (None: ccxt's ``rateLimit`` × cost), ``key_counter`` (Kraken).
    ``private_scope``: who a refusal without Retry-After of a private call is about: "address"
    (Binance, Bybit) or "key". ``read_weight``: the address weight of one balance read;
    ``round_public_weight``: of the public calls of one round (tickers).
    """

    exchange: str
    weight_limit: float | None = None
    window_seconds: float = 60.0
    aligned: bool = False
    weights: Mapping[str, PathWeight] = field(default_factory=dict)
    usage_header: str | None = None
    public_interval: float | None = None
    key_interval: float | None = None
    key_counter: KeyCounter | None = None
    key_costs: Mapping[str, float] = field(default_factory=dict)
    private_scope: str = "key"
    read_weight: float = 1.0
    round_public_weight: float = 1.0
    rest_prefix: str | None = None

    def weight(self, path: str, params: Mapping | None = None) -> int:
        """The address weight of a call of ``path`` (REST path) with ``params``."""
        entry = self.weights.get(path)
        if entry is None:
            return 1
        if entry.with_symbol is not None and params and "symbol" in params:
            return entry.with_symbol
        return entry.base

    def key_cost(self, path: str) -> float:
        return self.key_costs.get(path, 1.0)

    def paced_rate(self) -> float | None:
        """Address weight per second the pacing spends (None: unlimited)."""
        if self.weight_limit is None:
            return None
        return self.weight_limit * HEADROOM / self.window_seconds

    def scaled(self, time_scale: float) -> ExchangeLimits:
        """The same limits with every duration divided by ``time_scale`` (rates multiplied)."""
        if time_scale == 1:
            return self
        s = float(time_scale)
        counter = self.key_counter and KeyCounter(self.key_counter.maximum, self.key_counter.decay_per_second * s)
        return replace(self, window_seconds=self.window_seconds / s,
                       public_interval=None if self.public_interval is None else self.public_interval / s,
                       key_interval=None if self.key_interval is None else self.key_interval / s,
                       key_counter=counter)


BUILT_IN: dict[str, ExchangeLimits] = {
    "binance": ExchangeLimits(
        "binance", weight_limit=6000, window_seconds=60.0, aligned=True,
        weights={"/api/v3/account": PathWeight(20), "/api/v3/exchangeInfo": PathWeight(20),
                 "/api/v3/ticker/24hr": PathWeight(80, 2), "/api/v3/ticker/price": PathWeight(4, 2)},
        usage_header="X-MBX-USED-WEIGHT-1M", private_scope="address", read_weight=20, round_public_weight=80),
    "kraken": ExchangeLimits(
        "kraken", public_interval=1.0, key_interval=1.1, key_counter=KRAKEN_TIERS[DEFAULT_TIER],
        key_costs={"/0/private/Ledgers": 2, "/0/private/QueryLedgers": 2, "/0/private/TradesHistory": 2},
        read_weight=0, rest_prefix="/0/{api}/"),
    "okx": ExchangeLimits("okx", public_interval=2.0 / 20, key_interval=2.0 / 10, read_weight=0,
                          rest_prefix="/api/v5/"),
    "coinbase": ExchangeLimits("coinbase", public_interval=1.0 / 10, key_interval=1.0 / 30, read_weight=0),
    "bybit": ExchangeLimits("bybit", weight_limit=600, window_seconds=5.0, usage_header="X-Bapi-Limit-Status",
                            private_scope="address", read_weight=1, rest_prefix="/"),
}


def effective_limits(exchange: str, settings, rate_limit_ms: float, time_scale: float = 1.0) -> ExchangeLimits:
    """The built-in limits of ``exchange`` (else ccxt's ``rateLimit`` for public calls), with
    ``settings.rate_limits[exchange]`` applied, every duration divided by ``time_scale``."""
    limits = BUILT_IN.get(exchange) or ExchangeLimits(exchange, public_interval=rate_limit_ms / 1000.0 or None,
                                                      read_weight=0)
    override = settings.rate_limits.get(exchange) if settings is not None else None
    if override is not None:
        if override.weight_per_minute is not None:
            window = limits.window_seconds if limits.weight_limit is not None else 60.0
            limits = replace(limits, weight_limit=override.weight_per_minute * window / 60.0, window_seconds=window,
                             read_weight=limits.read_weight or 1)
        if override.public_min_interval_seconds is not None:
            limits = replace(limits, public_interval=override.public_min_interval_seconds or None)
        if override.min_interval_seconds is not None:  # the user's spacing replaces the key model
            limits = replace(limits, key_interval=override.min_interval_seconds, key_counter=None)
        if override.tier is not None:
            limits = replace(limits, key_counter=KRAKEN_TIERS[override.tier])
    return limits.scaled(time_scale)
