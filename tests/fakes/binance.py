"""FakeBinance: a loopback Binance *spot* REST API (https://developers.binance.com/docs/binance-spot-api-docs).

Endpoints (everything else -> HTTP 404, counted nowhere):
  public   GET /api/v3/exchangeInfo   (``symbol=`` / ``symbols=["..",..]`` filters)
           GET /api/v3/ticker/24hr    (all, ``symbol=`` -> one object, ``symbols=[..]`` -> list)
           GET /api/v3/ticker/price   (all, ``symbol=`` -> one object, ``symbols=[..]`` -> list)
           GET /api/v3/ping, /api/v3/time
  private  GET /api/v3/account        (``omitZeroBalances=true`` honoured)

Auto-accounts (``auto_accounts=True``) accept any 64-alphanumeric API key (Binance's format) whose
secret is ``derive_secret(api_key)``; other keys get -2014.

Wire format is Binance's: numbers as strings with 8 decimals ("0.50000000"), errors as
``{"code": -1022, "msg": "..."}``. Asset and symbol ids are the unified codes (BTC, BTCUSDT).

Authentication, exactly as Binance (and as ccxt's ``binance.sign`` produces it): header
``X-MBX-APIKEY``; query ``...&timestamp=MS&recvWindow=MS&signature=HEX`` where ``signature`` is
hex HMAC-SHA256(secret, the query string as sent without the ``signature`` pair [+ body]).
Timestamp rules: rejected when ``timestamp >= server_ms + 1000`` or
``server_ms - timestamp > recvWindow`` (default 5000, max 60000), and - the fake's own rule -
when lower than the key's previous accepted timestamp (a rejected out-of-window timestamp does not
become the key's "previous" one).

Errors (HTTP status, body) and what ccxt 4.5.x raises for them (``binance.handle_errors``; note
the fake's URL is not api.binance.com, so only ccxt's top-level ``exceptions`` apply):
  wrong signature            400 -1022 "Signature for this request is not valid."  AuthenticationError
  unknown key / invalid_key  401 -2015 "Invalid API-key, IP, or permissions..."   AuthenticationError
                                 (ccxt quirk: DDoSProtection once that ccxt instance has made one
                                 successful private call - ``hasAlreadyAuthenticatedSuccessfully``)
  missing / malformed key    401 -2014 "API-key format invalid."                   AuthenticationError
  timestamp / invalid_nonce  400 -1021 "Timestamp for this request ..."            InvalidNonce
  missing timestamp          400 -1102 "Mandatory parameter 'timestamp' ..."       BadRequest
  recvWindow > 60000         400 -1131 "recvWindow must be less than 60000."       BadRequest
  spacing breach / http_429  429 -1003 "Too many requests; ..."                    DDoSProtection
  http_418 (extra fault)     418 -1003 "Way too many requests; IP banned ..."      DDoSProtection
                                 (with ``time_scale`` N: Retry-After 120/N s, ban end likewise)

Rate limits (``enforce_limits``; REQUEST_WEIGHT per address, weights, X-MBX-USED-WEIGHT-1M on
every response even when not enforced, 429 then 418 bans): see ``exchange_limits.BinanceRules``.
  http_500 / http_502        500 / 502 gateway HTML page                           ExchangeNotAvailable
  malformed_json             200, truncated JSON         ccxt raises NOTHING: it returns an empty
                                                         balance whose ``info`` is the raw text
"""
from __future__ import annotations

import hashlib
import hmac
import json
import math
import secrets
import string
import time
from decimal import Decimal

from .base import Account, FakeExchange, Request, Response, fmt_decimal
from .exchange_limits import BinanceRules

__all__ = ["FakeBinance", "derive_secret", "CCXT_OPTIONS", "EXTRA_FAULTS"]

#: ccxt options for binance. Only spot markets are loaded (ccxt's default also loads the USD-M
#: and COIN-M futures exchangeInfo from fapi/dapi); ``fetchCurrencies: False`` stops the signed
#: ``sapi/v1/capital/config/getall`` (+ ``sapi/v1/margin/allPairs``) calls load_markets makes when
#: keys are present; ``fetchMargins: False`` stops the signed margin-pair calls of fetch_markets.
#: With these, load_markets = GET /api/v3/exchangeInfo, fetch_tickers = GET /api/v3/ticker/24hr,
#: fetch_balance = GET /api/v3/account, with or without keys.
CCXT_OPTIONS: dict = {
    "fetchMarkets": {"types": ["spot"]},
    "fetchCurrencies": False,
    "fetchMargins": False,
}

#: faults accepted by ``FakeBinance.inject`` on top of base.FAULTS
EXTRA_FAULTS = ("http_418",)

_AUTO_SEED = b"multibalance-fake-binance-auto-accounts"
_ALNUM = string.ascii_letters + string.digits
_RECV_WINDOW_DEFAULT = 5000
_RECV_WINDOW_MAX = 60000
_STEP = Decimal("0.00001")


def derive_secret(api_key: str) -> str:
    """The secret an auto-account ``api_key`` must sign with (64 alphanumerics, like Binance)."""
    return hmac.new(_AUTO_SEED, api_key.encode("utf-8"), hashlib.sha256).hexdigest()


def _key_well_formed(api_key: str) -> bool:
    return len(api_key) == 64 and all(c in _ALNUM for c in api_key)


def _error(code: int, msg: str, status: int = 400, headers=None) -> Response:
    return FakeExchange.json_response({"code": code, "msg": msg}, status, headers)


def _d8(value) -> str:
    return fmt_decimal(value, 8)


def _tick_size(price: Decimal) -> Decimal:
    """~7 significant digits, between 0.01 and 1e-8 (BTCUSDT 0.01, ETHBTC 0.0000001)."""
    if price <= 0:
        return Decimal("0.01")
    exponent = math.floor(math.log10(float(price)))
    return Decimal(1).scaleb(max(-8, min(-2, exponent - 5)))


class FakeBinance(FakeExchange):
    """Binance spot REST fake; see the module docstring for endpoints, rules and error mapping.
    All shared state is guarded by the single ``self.lock`` of ``FakeExchange``."""

    name = "binance"
    public_routes = {
        "/api/v3/exchangeInfo": "public_exchange_info",
        "/api/v3/ticker/24hr": "public_ticker_24hr",
        "/api/v3/ticker/price": "public_ticker_price",
        "/api/v3/ping": "public_ping",
        "/api/v3/time": "public_time",
    }
    private_routes = {
        "/api/v3/account": "private_account",
    }
    #: Binance has no USD spot markets; USDT/USDC/EUR/BTC quotes instead.
    default_prices = {
        "BTC/USDT": "50000", "ETH/USDT": "3000", "DOT/USDT": "7.15", "EUR/USDT": "1.10",
        "USDC/USDT": "1.00", "ETH/BTC": "0.06", "BTC/EUR": "45454.55", "ETH/EUR": "2727.27",
        "DOT/EUR": "6.50", "BTC/USDC": "50000", "ETH/USDC": "3000",
    }
    auto_balances = {"USDT": "100", "BTC": "0.01"}
    nonce_strict = False  # timestamps: only a timestamp lower than the previous one is a breach
    extra_faults = EXTRA_FAULTS
    limit_rules_class = BinanceRules

    # ------------------------------------------------------------------ faults
    def inject(self, fault: str, api_key=None, count: int = 1) -> None:
        """As ``FakeExchange.inject``, plus ``"http_418"`` (Binance's IP-ban answer)."""
        if fault not in EXTRA_FAULTS:
            return super().inject(fault, api_key, count)
        self._enqueue_fault(fault, api_key, count)  # base's own check only knows base.FAULTS

    # ------------------------------------------------------------------ credentials
    def new_credentials(self) -> tuple:
        api_key = "".join(secrets.choice(_ALNUM) for _ in range(64))
        secret = "".join(secrets.choice(_ALNUM) for _ in range(64))
        return api_key, secret, None

    def derive_credentials(self, api_key: str):
        return (derive_secret(api_key), None) if _key_well_formed(api_key) else None

    def prepare_account(self, account: Account) -> None:
        account.extra["key"] = account.secret.encode("utf-8")
        account.extra["uid"] = int.from_bytes(hashlib.sha256(account.api_key.encode()).digest()[:4],
                                              "big")

    # ------------------------------------------------------------------ auth
    def extract_key(self, req: Request):
        return req.headers.get("X-MBX-APIKEY") or None

    @staticmethod
    def _signed_payload(req: Request):
        """(payload, signature) as Binance sees them: totalParams = query string + body with the
        ``signature`` pair removed (ccxt appends it last)."""
        parts = req.raw_query.split("&") if req.raw_query else []
        body = req.body.decode("utf-8", "replace") if req.body else ""
        if body:
            parts += body.split("&")
        signature = None
        kept = []
        for part in parts:
            if part.startswith("signature="):
                signature = part[len("signature="):]
            else:
                kept.append(part)
        return "&".join(kept), signature

    def verify_signature(self, req: Request, account: Account) -> bool:
        payload, sent = self._signed_payload(req)
        if not sent:
            return False
        mac = hmac.new(account.extra["key"], payload.encode("utf-8"), hashlib.sha256).hexdigest()
        return hmac.compare_digest(mac, sent.lower())

    def _params(self, req: Request) -> dict:
        params = dict(req.query)
        if req.body:
            params.update(req.form())
        return params

    def extract_nonce(self, req: Request):
        try:
            return int(self._params(req)["timestamp"])
        except (KeyError, TypeError, ValueError):
            return None

    def check_request(self, req: Request, account: Account, nonce):
        """recvWindow rules (under the lock). Base has already stored ``nonce`` as the key's last
        one; an out-of-window timestamp is put back to the previous accepted value."""
        if nonce is None:
            self.count_violation("nonce")
            return _error(-1102, "Mandatory parameter 'timestamp' was not sent, was empty/null, "
                                 "or malformed.")
        raw_window = self._params(req).get("recvWindow")
        try:
            window = _RECV_WINDOW_DEFAULT if raw_window is None else int(raw_window)
        except ValueError:
            window = -1
        if not 0 <= window <= _RECV_WINDOW_MAX:
            account.last_nonce = account.extra.get("ok_nonce")
            return _error(-1131, "recvWindow must be less than 60000.")
        server_ms = time.time() * 1000.0
        if nonce >= server_ms + 1000 or server_ms - nonce > window:
            account.last_nonce = account.extra.get("ok_nonce")
            self.count_violation("nonce")
            if nonce >= server_ms + 1000:
                return _error(-1021, "Timestamp for this request was 1000ms ahead of the "
                                     "server's time.")
            return _error(-1021, "Timestamp for this request is outside of the recvWindow.")
        account.extra["ok_nonce"] = nonce
        return None

    # ------------------------------------------------------------------ errors
    def error_response(self, kind: str, req: Request) -> Response:
        if kind == "signature":
            return _error(-1022, "Signature for this request is not valid.")
        if kind == "unknown_key":
            key = self.extract_key(req)
            if not key or not _key_well_formed(key):
                return _error(-2014, "API-key format invalid.", 401)
            return _error(-2015, "Invalid API-key, IP, or permissions for action.", 401)
        if kind == "invalid_key":
            return _error(-2015, "Invalid API-key, IP, or permissions for action.", 401)
        if kind == "invalid_nonce":
            return _error(-1021, "Timestamp for this request is outside of the recvWindow.")
        if kind in ("rate_limit", "http_429"):
            return _error(-1003, "Too many requests; current limit of IP(127.0.0.1) is 6000 "
                                 "requests per minute. Please use the websocket for live updates "
                                 "to avoid polling the API.", 429, {"Retry-After": "1"})
        if kind == "http_418":
            ban = 120.0 / self.time_scale
            until = int((time.time() + ban) * 1000)
            return _error(-1003, f"Way too many requests; IP(127.0.0.1) banned until {until}. "
                                 "Please use the websocket for live updates to avoid bans.", 418,
                          {"Retry-After": self.limits.retry_after(ban)})
        if kind == "malformed_json":
            return Response(200, b'{"makerCommission":10,"takerCommission":10,"balances":'
                                 b'[{"asset":"BTC","free":"0.5', "application/json")
        if kind == "not_found":
            return Response(404, b"<html><body><h1>404 Not Found</h1></body></html>", "text/html")
        if kind == "http_500":
            return Response(500, b"<html><body><h1>500 Internal Server Error</h1></body></html>",
                            "text/html")
        return super().error_response(kind, req)

    # ------------------------------------------------------------------ public handlers
    def _symbols(self, req: Request):
        """[(symbol id, unified symbol)] selected by ``symbol``/``symbols``; None if unknown."""
        all_ids = {s.replace("/", ""): s for s in self.prices}
        one = req.query.get("symbol")
        many = req.query.get("symbols")
        if one is None and many is None:
            return list(all_ids.items())
        try:
            wanted = [one] if one is not None else json.loads(many)
        except ValueError:
            return None
        if not isinstance(wanted, list) or any(w not in all_ids for w in wanted):
            return None
        return [(w, all_ids[w]) for w in wanted]

    def public_ping(self, req: Request) -> Response:
        return self.json_response({})

    def public_time(self, req: Request) -> Response:
        return self.json_response({"serverTime": int(time.time() * 1000)})

    def public_exchange_info(self, req: Request) -> Response:
        chosen = self._symbols(req)
        if chosen is None:
            return _error(-1121, "Invalid symbol.")
        symbols = []
        for market_id, symbol in chosen:
            base, quote = symbol.split("/")
            tick = _tick_size(self.prices[symbol])
            symbols.append({
                "symbol": market_id, "status": "TRADING",
                "baseAsset": base, "baseAssetPrecision": 8,
                "quoteAsset": quote, "quotePrecision": 8, "quoteAssetPrecision": 8,
                "baseCommissionPrecision": 8, "quoteCommissionPrecision": 8,
                "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT",
                               "TAKE_PROFIT_LIMIT"],
                "icebergAllowed": True, "ocoAllowed": True, "otoAllowed": True,
                "quoteOrderQtyMarketAllowed": True, "allowTrailingStop": True,
                "cancelReplaceAllowed": True, "isSpotTradingAllowed": True,
                "isMarginTradingAllowed": False,
                "filters": [
                    {"filterType": "PRICE_FILTER", "minPrice": _d8(tick),
                     "maxPrice": "1000000.00000000", "tickSize": _d8(tick)},
                    {"filterType": "LOT_SIZE", "minQty": _d8(_STEP), "maxQty": "9000.00000000",
                     "stepSize": _d8(_STEP)},
                    {"filterType": "ICEBERG_PARTS", "limit": 10},
                    {"filterType": "MARKET_LOT_SIZE", "minQty": "0.00000000",
                     "maxQty": "100.00000000", "stepSize": "0.00000000"},
                    {"filterType": "NOTIONAL", "minNotional": "5.00000000",
                     "applyMinToMarket": True, "maxNotional": "9000000.00000000",
                     "applyMaxToMarket": False, "avgPriceMins": 5},
                    {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": 200},
                ],
                "permissions": [], "permissionSets": [["SPOT"]],
                "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
                "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER",
                                                    "EXPIRE_BOTH"],
            })
        return self.json_response({
            "timezone": "UTC", "serverTime": int(time.time() * 1000),
            "rateLimits": [
                {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
                 "limit": 6000},
                {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10,
                 "limit": 100},
                {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5,
                 "limit": 61000},
            ],
            "exchangeFilters": [], "symbols": symbols,
        })

    def public_ticker_24hr(self, req: Request) -> Response:
        chosen = self._symbols(req)
        if chosen is None:
            return _error(-1121, "Invalid symbol.")
        now = int(time.time() * 1000)
        tickers = []
        for market_id, symbol in chosen:
            price = self.prices[symbol]
            p = _d8(price)
            tickers.append({
                "symbol": market_id, "priceChange": "0.00000000", "priceChangePercent": "0.000",
                "weightedAvgPrice": p, "prevClosePrice": p, "lastPrice": p,
                "lastQty": "0.01000000", "bidPrice": p, "bidQty": "1.00000000", "askPrice": p,
                "askQty": "1.00000000", "openPrice": p, "highPrice": p, "lowPrice": p,
                "volume": "100.00000000", "quoteVolume": _d8(price * 100),
                "openTime": now - 86400000, "closeTime": now, "firstId": 1, "lastId": 100,
                "count": 100,
            })
        if "symbol" in req.query:
            return self.json_response(tickers[0])
        return self.json_response(tickers)

    def public_ticker_price(self, req: Request) -> Response:
        chosen = self._symbols(req)
        if chosen is None:
            return _error(-1121, "Invalid symbol.")
        prices = [{"symbol": market_id, "price": _d8(self.prices[symbol])}
                  for market_id, symbol in chosen]
        return self.json_response(prices[0] if "symbol" in req.query else prices)

    # ------------------------------------------------------------------ private handlers
    def private_account(self, req: Request, account: Account) -> Response:
        omit_zero = str(self._params(req).get("omitZeroBalances", "")).lower() == "true"
        balances = [{"asset": code, "free": _d8(amount), "locked": "0.00000000"}
                    for code, amount in account.balances.items()
                    if not (omit_zero and amount == 0)]
        return self.json_response({
            "makerCommission": 10, "takerCommission": 10, "buyerCommission": 0,
            "sellerCommission": 0,
            "commissionRates": {"maker": "0.00100000", "taker": "0.00100000",
                                "buyer": "0.00000000", "seller": "0.00000000"},
            "canTrade": True, "canWithdraw": True, "canDeposit": True, "brokered": False,
            "requireSelfTradePrevention": False, "preventSor": False,
            "updateTime": int(time.time() * 1000), "accountType": "SPOT",
            "balances": balances, "permissions": ["SPOT"], "uid": account.extra["uid"],
        })

