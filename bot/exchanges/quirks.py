"""Per-exchange quirks as data: the ccxt options the product needs and the private-call spacing.

Add an exchange's quirk here, not in the code that reads: ``DEFAULT_OPTIONS`` (merged under the
broker's own ``options``), ``PRIVATE_MIN_INTERVALS`` (seconds between two private calls of one
key, from the limits table `bot.exchanges.limits`; ``settings.rate_limits`` overrides it).
"""
from __future__ import annotations

from typing import Any

from bot.exchanges.limits import BUILT_IN

# Spot markets only, no signed calls while loading markets, and the balance endpoint we read
# (Coinbase: Advanced Trade v3 accounts).
DEFAULT_OPTIONS: dict[str, dict[str, Any]] = {
    "binance": {"fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False, "fetchMargins": False},
    "okx": {"fetchMarkets": {"types": ["spot"]}},
    "coinbase": {"fetchBalance": "v3PrivateGetBrokerageAccounts", "fetchMarkets": "fetchMarketsV3",
                 "fetchTickers": "fetchTickersV3", "fetchTicker": "fetchTickerV3",
                 "fetchTime": "v3PublicGetBrokerageTime"},
}

# Seconds between two private calls of one key where the limits table sets it (Kraken: 1.1 s).
PRIVATE_MIN_INTERVALS: dict[str, float] = {name: limits.key_interval for name, limits in BUILT_IN.items()
                                           if limits.key_interval is not None and name == "kraken"}


def private_min_interval(settings, exchange: str) -> float | None:
    """Seconds between private calls of one key: ``settings.rate_limits``, else the built-in
    value, else None (ccxt's ``rateLimit`` × the endpoint's cost)."""
    configured = settings.min_interval(exchange)
    return configured if configured is not None else PRIVATE_MIN_INTERVALS.get(exchange)
