"""What ccxt knows about exchanges, for validating a configuration: ids and required credentials.

The configuration layer asks here instead of importing ccxt itself. ``_passphrase`` memoises
`needs_passphrase` (single assignments of immutable values: safe without a lock).
"""
from __future__ import annotations

import ccxt

_passphrase: dict[str, bool] = {}


def is_exchange_id(exchange: str) -> bool:
    """True when ``exchange`` is a ccxt exchange id (``kraken``, ``binance``...)."""
    return exchange in ccxt.exchanges


def needs_passphrase(exchange: str) -> bool:
    """True when ccxt requires a passphrase (``password``) for ``exchange`` (OKX, KuCoin...)."""
    if exchange not in _passphrase:
        _passphrase[exchange] = bool(getattr(ccxt, exchange)().requiredCredentials.get("password"))
    return _passphrase[exchange]
