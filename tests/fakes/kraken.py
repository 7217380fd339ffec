"""FakeKraken: a loopback Kraken spot REST API (https://docs.kraken.com/api-reference/).

Wire format: every body is ``{"error": [...], "result": {...}}`` (errors: ``{"error": ["EAPI:..."]}``,
HTTP 200 as Kraken does for API errors). Asset ids are Kraken's real ones (XXBT, XETH, ZUSD, ZEUR,
DOT, USDT, ...) and so are pair ids (XXBTZUSD, XETHXXBT, ZEURZUSD, DOTEUR, USDTZUSD, ...).

Private calls (POST /0/private/BalanceEx, /0/private/Balance) are authenticated exactly as Kraken:
``API-Sign = base64(HMAC-SHA512(base64decode(secret), uri_path + SHA256(nonce + postdata)))`` with
the ``API-Key`` header; the nonce (form field, or JSON field for JSON bodies) must be strictly
greater than the key's previous one.

Error mapping (what ccxt 4.5.x raises, see its ``kraken.exceptions``):
  bad signature / unknown key / injected invalid_key -> ``EAPI:Invalid key``   -> AuthenticationError
  lower/replayed nonce / injected invalid_nonce      -> ``EAPI:Invalid nonce`` -> InvalidNonce
  spacing breach (min_interval)                      -> ``EAPI:Rate limit exceeded`` -> DDoSProtection
  injected http_500 -> HTTP 500 ``EGeneral:Internal error``  -> ExchangeNotAvailable
  injected http_502 -> HTTP 502 HTML (Cloudflare style)      -> ExchangeNotAvailable
  injected http_429 -> HTTP 429 ``EGeneral:Too many requests`` -> DDoSProtection
  injected malformed_json -> HTTP 200, truncated JSON body   -> NOTHING: ccxt.kraken returns an
      empty balance whose ``info`` is the raw text (its handle_errors only inspects parsed JSON)
  unknown path -> HTTP 404 ``EGeneral:Unknown method``

Rate limits (``enforce_limits``): public 1 call/s per address -> ``EGeneral:Too many requests``;
private call counter per key by tier -> ``EAPI:Rate limit exceeded`` (both HTTP 200, as Kraken
answers API errors); see ``exchange_limits.KrakenRules``. The tier is ``FakeKraken(tier=...)``
/ the ``tier`` attribute (default "starter"), or per account: ``add_account(balances,
tier="pro")``, ``set_tier(api_key, tier)`` (None: back to the fake's tier).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import os
import time
from decimal import Decimal
from email.utils import formatdate

from .base import Account, FakeExchange, Request, Response, fmt_decimal
from .exchange_limits import KRAKEN_TIERS, KrakenRules

__all__ = ["FakeKraken", "derive_secret", "CCXT_OPTIONS", "ASSETS"]

#: ccxt options for kraken: fetch_balance only calls BalanceEx (after load_markets = Assets +
#: AssetPairs), fetch_tickers only Ticker; nothing to switch off.
CCXT_OPTIONS: dict = {}

_AUTO_SEED = b"multibalance-fake-kraken-auto-accounts"

#: unified code -> (kraken asset id, altname, decimals, display_decimals)
ASSETS = {
    "BTC": ("XXBT", "XBT", 10, 5),
    "ETH": ("XETH", "ETH", 10, 5),
    "LTC": ("XLTC", "LTC", 10, 5),
    "XRP": ("XXRP", "XRP", 8, 5),
    "DOGE": ("XXDG", "XDG", 8, 2),
    "USD": ("ZUSD", "USD", 4, 2),
    "EUR": ("ZEUR", "EUR", 4, 2),
    "GBP": ("ZGBP", "GBP", 4, 2),
    "DOT": ("DOT", "DOT", 10, 8),
    "SOL": ("SOL", "SOL", 10, 5),
    "ADA": ("ADA", "ADA", 8, 6),
    "USDT": ("USDT", "USDT", 8, 4),
    "USDC": ("USDC", "USDC", 8, 4),
}

#: pair ids that do not follow the generic rule (see ``_pair_info``)
_PAIR_ID_OVERRIDES = {"USDT/USD": ("USDTZUSD", "USDTUSD")}
_PAIR_DECIMALS = {"BTC/USD": 1, "BTC/EUR": 1, "BTC/USDT": 1, "ETH/USD": 2, "ETH/EUR": 2,
                  "ETH/USDT": 2, "EUR/USD": 5, "ETH/BTC": 5, "DOT/EUR": 4, "DOT/USD": 4,
                  "USDT/USD": 5, "USDC/USD": 5, "USDT/EUR": 4, "USDC/EUR": 4}

_FEES = [[0, 0.26], [50000, 0.24], [100000, 0.22], [250000, 0.2], [500000, 0.18],
         [1000000, 0.16], [2500000, 0.14], [5000000, 0.12], [10000000, 0.1]]
_FEES_MAKER = [[0, 0.16], [50000, 0.14], [100000, 0.12], [250000, 0.1], [500000, 0.08],
               [1000000, 0.06], [2500000, 0.04], [5000000, 0.02], [10000000, 0]]


def derive_secret(api_key: str) -> str:
    """The secret an auto-account ``api_key`` must sign with (base64 of 64 bytes, like Kraken)."""
    digest = hmac.new(_AUTO_SEED, api_key.encode("utf-8"), hashlib.sha512).digest()
    return base64.b64encode(digest).decode("ascii")


def asset_info(code: str) -> tuple:
    """(kraken id, altname, decimals, display_decimals) of a unified code; unknown codes map to
    themselves with 8 decimals (Kraken's newer assets have no X/Z prefix)."""
    return ASSETS.get(code) or (code, code, 8, 4)


def _pair_info(symbol: str) -> tuple:
    """(pair id, altname, base id, quote id, pair_decimals) of a unified symbol, Kraken style:
    legacy X/Z assets on both sides -> id = base id + quote id (XXBTZUSD), else altnames (DOTEUR)."""
    base, quote = symbol.split("/")
    b_id, b_alt = asset_info(base)[:2]
    q_id, q_alt = asset_info(quote)[:2]
    altname = b_alt + q_alt
    if symbol in _PAIR_ID_OVERRIDES:
        pair_id, altname = _PAIR_ID_OVERRIDES[symbol]
    elif b_id != b_alt and q_id != q_alt:
        pair_id = b_id + q_id
    else:
        pair_id = altname
    return pair_id, altname, b_id, q_id, _PAIR_DECIMALS.get(symbol, 5)


def _kraken_error(message: str, status: int = 200) -> Response:
    return FakeExchange.json_response({"error": [message]}, status)


class FakeKraken(FakeExchange):
    """Kraken spot REST fake. Public: Time, SystemStatus, Assets, AssetPairs, Ticker.
    Private: BalanceEx, Balance. Everything else -> 404 ``EGeneral:Unknown method``."""

    name = "kraken"
    public_routes = {
        "/0/public/Time": "public_time",
        "/0/public/SystemStatus": "public_system_status",
        "/0/public/Assets": "public_assets",
        "/0/public/AssetPairs": "public_asset_pairs",
        "/0/public/Ticker": "public_ticker",
    }
    private_routes = {
        "/0/private/BalanceEx": "private_balance_ex",
        "/0/private/Balance": "private_balance",
    }
    default_prices = {
        "BTC/USD": "50000", "ETH/USD": "3000", "BTC/EUR": "45454.5", "EUR/USD": "1.10",
        "DOT/EUR": "6.50", "DOT/USD": "7.15", "ETH/BTC": "0.06", "ETH/EUR": "2727.27",
        "USDT/USD": "1.00", "USDC/USD": "1.00", "BTC/USDT": "50000", "ETH/USDT": "3000",
        "USDT/EUR": "0.9091", "USDC/EUR": "0.9091",
    }
    auto_balances = {"USD": "100", "BTC": "0.01"}
    nonce_strict = True
    limit_rules_class = KrakenRules
    default_tier = "starter"

    def __init__(self, *args, tier: str = default_tier, **kwargs):
        super().__init__(*args, **kwargs)
        self.tier = tier

    @property
    def tier(self) -> str:
        """The call-counter tier of every account without its own (starter|intermediate|pro)."""
        return self._tier

    @tier.setter
    def tier(self, value: str) -> None:
        if value not in KRAKEN_TIERS:
            raise ValueError(f"unknown tier {value!r}; expected one of {tuple(KRAKEN_TIERS)}")
        self._tier = value

    def add_account(self, balances=None, tier=None) -> dict:
        """As ``FakeExchange.add_account``; ``tier`` gives this account its own tier."""
        creds = super().add_account(balances)
        if tier is not None:
            self.set_tier(creds["api_key"], tier)
        return creds

    def set_tier(self, api_key: str, tier) -> None:
        """The tier of one account (None: the fake's ``tier``)."""
        if tier is not None and tier not in KRAKEN_TIERS:
            raise ValueError(f"unknown tier {tier!r}; expected one of {tuple(KRAKEN_TIERS)}")
        with self.lock:
            acct = self._get_account_locked(api_key)
            if acct is None:
                raise KeyError(f"unknown api key {api_key[:6]}...")
            acct.extra["tier"] = tier

    def reset_limits(self, defaults: bool = False) -> None:
        super().reset_limits(defaults)
        if defaults:
            self.tier = self.default_tier

    # ------------------------------------------------------------------ credentials
    def new_credentials(self) -> tuple:
        api_key = base64.b64encode(os.urandom(42)).decode("ascii")        # 56 chars, like Kraken
        secret = base64.b64encode(os.urandom(64)).decode("ascii")         # 88 chars
        return api_key, secret, None

    def derive_credentials(self, api_key: str):
        return derive_secret(api_key), None

    def prepare_account(self, account: Account) -> None:
        try:
            account.extra["key"] = base64.b64decode(account.secret, validate=True)
        except ValueError:
            account.extra["key"] = None

    # ------------------------------------------------------------------ auth
    def _params(self, req: Request) -> dict:
        ctype = (req.headers.get("Content-Type") or "").lower()
        if ctype.startswith("application/json"):
            data = req.json()
            return data if isinstance(data, dict) else {}
        return req.form()

    def extract_key(self, req: Request):
        return req.headers.get("API-Key")

    def verify_signature(self, req: Request, account: Account) -> bool:
        key = account.extra.get("key")
        sent = req.headers.get("API-Sign")
        if not key or not sent:
            return False
        nonce = self._params(req).get("nonce")
        if nonce is None:
            return False
        inner = hashlib.sha256(str(nonce).encode("utf-8") + req.body).digest()
        mac = hmac.new(key, req.path.encode("utf-8") + inner, hashlib.sha512).digest()
        return hmac.compare_digest(base64.b64encode(mac).decode("ascii"), sent.strip())

    def extract_nonce(self, req: Request):
        try:
            return int(str(self._params(req).get("nonce")))
        except (TypeError, ValueError):
            return None

    def error_response(self, kind: str, req: Request) -> Response:
        if kind in ("signature", "unknown_key", "invalid_key"):
            return _kraken_error("EAPI:Invalid key")
        if kind == "invalid_nonce":
            return _kraken_error("EAPI:Invalid nonce")
        if kind == "rate_limit":
            return _kraken_error("EAPI:Rate limit exceeded")
        if kind == "http_500":
            return _kraken_error("EGeneral:Internal error", 500)
        if kind == "http_429":
            return _kraken_error("EGeneral:Too many requests", 429)
        if kind == "not_found":
            return _kraken_error("EGeneral:Unknown method", 404)
        if kind == "malformed_json":
            return Response(200, b'{"error":[],"result":{"ZUSD":{"balance":"10', "application/json")
        return super().error_response(kind, req)

    # ------------------------------------------------------------------ public handlers
    @staticmethod
    def _ok(result) -> Response:
        return FakeExchange.json_response({"error": [], "result": result})

    def public_time(self, req: Request) -> Response:
        now = time.time()
        return self._ok({"unixtime": int(now), "rfc1123": formatdate(now, usegmt=True)})

    def public_system_status(self, req: Request) -> Response:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        return self._ok({"status": "online", "timestamp": stamp})

    def _asset_codes(self) -> list:
        codes = dict.fromkeys(ASSETS)
        for symbol in self.prices:
            for code in symbol.split("/"):
                codes.setdefault(code)
        return list(codes)

    def public_assets(self, req: Request) -> Response:
        wanted = req.query.get("asset")
        wanted = set(wanted.split(",")) if wanted else None
        result = {}
        for code in self._asset_codes():
            aid, alt, dec, disp = asset_info(code)
            if wanted is not None and aid not in wanted and alt not in wanted and code not in wanted:
                continue
            result[aid] = {"aclass": "currency", "altname": alt, "decimals": dec,
                           "display_decimals": disp, "status": "enabled"}
        if wanted is not None and not result:
            return _kraken_error("EQuery:Unknown asset")
        return self._ok(result)

    def _pairs(self, req: Request):
        """[(symbol, pair info)] selected by the ``pair`` query (ids, altnames or wsnames)."""
        pairs = [(s, _pair_info(s)) for s in self.prices]
        wanted = req.query.get("pair")
        if not wanted:
            return pairs
        names = set(wanted.split(","))
        chosen = [(s, p) for s, p in pairs
                  if p[0] in names or p[1] in names or s in names or self._wsname(s) in names]
        return chosen if len(chosen) == len(names) else None

    @staticmethod
    def _wsname(symbol: str) -> str:
        base, quote = symbol.split("/")
        return asset_info(base)[1] + "/" + asset_info(quote)[1]

    def public_asset_pairs(self, req: Request) -> Response:
        pairs = self._pairs(req)
        if pairs is None:
            return _kraken_error("EQuery:Unknown asset pair")
        result = {}
        for symbol, (pid, alt, b_id, q_id, pdec) in pairs:
            result[pid] = {
                "altname": alt, "wsname": self._wsname(symbol),
                "aclass_base": "currency", "base": b_id,
                "aclass_quote": "currency", "quote": q_id,
                "lot": "unit", "cost_decimals": 5, "pair_decimals": pdec, "lot_decimals": 8,
                "lot_multiplier": 1, "leverage_buy": [], "leverage_sell": [],
                "fees": _FEES, "fees_maker": _FEES_MAKER, "fee_volume_currency": "ZUSD",
                "margin_call": 80, "margin_stop": 40, "ordermin": "0.0001", "costmin": "0.5",
                "tick_size": fmt_decimal(Decimal(1).scaleb(-pdec), pdec), "status": "online",
            }
        return self._ok(result)

    def public_ticker(self, req: Request) -> Response:
        pairs = self._pairs(req)
        if pairs is None:
            return _kraken_error("EQuery:Unknown asset pair")
        result = {}
        for symbol, (pid, _alt, _b, _q, pdec) in pairs:
            price = self.prices[symbol]
            places = max(pdec, -price.as_tuple().exponent)
            p = fmt_decimal(price, places)
            result[pid] = {"a": [p, "1", "1.000"], "b": [p, "1", "1.000"],
                           "c": [p, "0.01000000"], "v": ["10.00000000", "100.00000000"],
                           "p": [p, p], "t": [10, 100], "l": [p, p], "h": [p, p], "o": p}
        return self._ok(result)

    # ------------------------------------------------------------------ private handlers
    def private_balance_ex(self, req: Request, account: Account) -> Response:
        result = {}
        for code, amount in account.balances.items():
            aid, _alt, dec, _disp = asset_info(code)
            result[aid] = {"balance": fmt_decimal(amount, dec), "hold_trade": fmt_decimal(0, dec)}
        return self._ok(result)

    def private_balance(self, req: Request, account: Account) -> Response:
        result = {}
        for code, amount in account.balances.items():
            aid, _alt, dec, _disp = asset_info(code)
            result[aid] = fmt_decimal(amount, dec)
        return self._ok(result)
