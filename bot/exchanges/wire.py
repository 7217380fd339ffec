"""Exact balances from the wire: how private ccxt instances parse what an exchange sends.

ccxt turns every amount into a float by default (``12345678.1234567891`` arrives as
``12345678.12345679``), keeps the last of two JSON keys that repeat, and keys its balance by
unified code, so two exchange ids of one asset (Kraken's ``XXBT`` and ``XBT``) overwrite each
other. `make_exact` installs three hooks on a private instance so that none of that happens:

* ``on_json_response`` = `strict_json`: fractional numbers keep their literal text (a string,
  which ccxt's ``safe_string`` passes through unchanged; integers are exact as ints), and a key repeated within one JSON object raises
  `MalformedResponse` naming it. Bodies that are not JSON still reach ccxt as text.
* ``number = str``: ccxt's ``safe_balance`` keeps free/used/total as the exchange's strings
  (its own free + used arithmetic is already exact string arithmetic, ``Precise``).
* ``safe_currency_code``: within one read (`begin_read` resets it), a second exchange id that
  maps to a code already produced comes back as ``CODE`` + `ALIAS_MARK` + id, so its entry is
  kept beside the first instead of replacing it; `unalias` gives the code back, and
  `bot.exchanges.clients.parse_totals` sums them.

The hooks touch only the instance they are installed on (never the public, price-reading
instance). A private instance is used by one read at a time, on the fetch loop (see
`ExchangeEndpoint.take`), so the per-read alias table on it needs no lock.
"""
from __future__ import annotations

import json

from bot.exchanges.errors import MalformedResponse  # public here too

ALIAS_MARK = "\x1f"  # ASCII unit separator: never part of a currency code


def _unique_keys(pairs: list[tuple[str, object]]) -> dict:
    result: dict = {}
    for key, value in pairs:
        if key in result:
            raise MalformedResponse(f"duplicate JSON key {key[:40]!r} in the response")
        result[key] = value
    return result


def strict_json(text: str):
    """Parse a JSON body: fractional numbers as their literal strings, repeated keys refused.

    Raises `json.JSONDecodeError` (a ValueError: ccxt then treats the body as text) for what is
    not JSON, and `MalformedResponse` for a key repeated within one object."""
    return json.loads(text, object_pairs_hook=_unique_keys, parse_float=str)


def unalias(code: str) -> str:
    """The unified code of a balance key (``BTC`` for ``BTC`` + ALIAS_MARK + ``XBT``)."""
    return code.split(ALIAS_MARK, 1)[0]


def make_exact(exchange) -> None:
    """Install the hooks of the module docstring on a private ccxt instance (once)."""
    if getattr(exchange, "_multibalance_exact", False):
        return
    exchange._multibalance_exact = True
    exchange.number = str
    exchange.on_json_response = strict_json
    plain = exchange.safe_currency_code
    first_ids: dict[str, str] = {}  # unified code -> the first exchange id read as it, this read
    exchange._multibalance_first_ids = first_ids

    def safe_currency_code(currency_id, currency=None):
        code = plain(currency_id, currency)
        if not isinstance(code, str) or not isinstance(currency_id, str):
            return code
        first = first_ids.setdefault(code, currency_id)
        return code if first == currency_id else f"{code}{ALIAS_MARK}{currency_id}"

    exchange.safe_currency_code = safe_currency_code


def begin_read(exchange) -> None:
    """Forget the aliases seen by the previous read of this instance."""
    exchange._multibalance_first_ids.clear()
