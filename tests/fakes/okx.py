"""FakeOKX: a loopback OKX v5 *spot* REST API (https://www.okx.com/docs-v5/en/).

Endpoints (everything else -> HTTP 404, counted nowhere):
  public   GET /api/v5/public/instruments?instType=SPOT   (other instTypes: empty ``data``)
           GET /api/v5/market/tickers?instType=SPOT       (other instTypes: empty ``data``)
           GET /api/v5/market/ticker?instId=BTC-USDT
           GET /api/v5/public/time
  private  GET /api/v5/account/balance   (trading account; ``ccy=BTC,ETH`` filter honoured)
           GET /api/v5/asset/currencies  (ccxt's fetch_currencies; only called by load_markets on
                                          an instance that HAS keys - served faithfully)

Wire format is OKX's: ``{"code": "0", "msg": "", "data": [...]}``, numbers as plain decimal
strings ("0.5", "50000"); errors ``{"code": "50113", "msg": "Invalid Sign", "data": []}``.
Instrument ids are ``BASE-QUOTE`` with the unified codes (BTC-USDT).

Authentication, exactly as OKX (and ccxt's ``okx.sign``): headers OK-ACCESS-KEY,
OK-ACCESS-PASSPHRASE, OK-ACCESS-TIMESTAMP (ISO 8601 UTC with milliseconds) and OK-ACCESS-SIGN =
base64(HMAC-SHA256(secret, timestamp + METHOD + request-target-as-sent + body)). The timestamp must
be within 30 s of the server clock and - the fake's own rule - not lower than the key's previous
accepted one (a rejected out-of-window timestamp does not become the key's "previous" one).

Errors (HTTP status, code, msg) and what ccxt 4.5.x raises (``okx.handle_errors`` maps ``code``
through ``okx.exceptions['exact']`` before any HTTP-status mapping):
  wrong signature             401 50113 "Invalid Sign"                        AuthenticationError
  wrong passphrase            401 50105 'Request header "OK-ACCESS-PASSPHRASE" incorrect.'  idem
  unknown key / invalid_key   401 50111 "Invalid OK-ACCESS-KEY"               AuthenticationError
  missing key/sign/passphrase 401 50103 / 50106 / 50104 "... can not be empty" AuthenticationError
  unparseable timestamp       401 50112 "Invalid OK-ACCESS-TIMESTAMP"         AuthenticationError
  timestamp expired / lower / invalid_nonce
                              401 50102 "Timestamp request expired"           InvalidNonce
  spacing breach / http_429   429 50011 "Too Many Requests"                   RateLimitExceeded
  http_500                    500 50026 "System error. Try again later."      ExchangeNotAvailable
  http_502                    502 gateway HTML page                           ExchangeNotAvailable
  http_503 (extra fault)      503 50001 "Service temporarily unavailable..."  OnMaintenance
  system_busy (extra fault)   200 50013 "Systems are busy. Please try again later."
                                                                              ExchangeNotAvailable
  malformed_json              200, truncated JSON     ccxt raises NOTHING: it returns an empty
                                                      balance whose ``info`` is the raw text
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import string
import threading
import time
import uuid
from datetime import datetime
from decimal import Decimal

from .base import Account, FakeExchange, Request, Response
from .exchange_limits import OkxRules

__all__ = ["FakeOKX", "derive_secret", "derive_passphrase", "CCXT_OPTIONS", "EXTRA_FAULTS"]

#: ccxt options for okx. Only SPOT instruments are loaded (ccxt's default also fetches FUTURES,
#: SWAP and two OPTION underlyings: 5 instrument calls). Nothing else needs switching off:
#: fetch_currencies (private GET /api/v5/asset/currencies) has no ccxt option, but ccxt skips it
#: when the instance has no keys (the product's public instance), and private instances get their
#: markets via set_markets_from_exchange so they never run load_markets; the fake serves it anyway
#: for keyed instances that do. fetch_tickers = GET /api/v5/market/tickers?instType=SPOT,
#: fetch_balance = GET /api/v5/account/balance (defaultType "spot" -> trading account).
CCXT_OPTIONS: dict = {
    "fetchMarkets": {"types": ["spot"]},
}

#: faults accepted by ``FakeOKX.inject`` on top of base.FAULTS
EXTRA_FAULTS = ("http_503", "system_busy")

_AUTO_SEED = b"multibalance-fake-okx-auto-accounts"
_PASS_ALPHABET = string.ascii_letters + string.digits
_WINDOW_MS = 30000
_TICKS = {"BTC/USDT": "0.1", "ETH/USDT": "0.01", "BTC/EUR": "0.1", "ETH/EUR": "0.01",
          "BTC/USDC": "0.1", "ETH/USDC": "0.01", "ETH/BTC": "0.00001"}
#: unified code -> (chain suffix or "" for fiat, name, withdrawal decimals)
_CHAINS = {"BTC": ("Bitcoin", "Bitcoin", 8), "ETH": ("ERC20", "Ethereum", 8),
           "USDT": ("ERC20", "Tether", 6), "USDC": ("ERC20", "USD Coin", 6),
           "DOT": ("Polkadot", "Polkadot", 8), "EUR": ("", "Euro", 2)}


def derive_secret(api_key: str) -> str:
    """The secret an auto-account ``api_key`` must sign with (32 upper-case hex, like OKX)."""
    return hmac.new(_AUTO_SEED, b"secret:" + api_key.encode("utf-8"),
                    hashlib.sha256).hexdigest()[:32].upper()


def derive_passphrase(api_key: str) -> str:
    """The passphrase an auto-account ``api_key`` must send (16 characters)."""
    digest = hmac.new(_AUTO_SEED, b"passphrase:" + api_key.encode("utf-8"),
                      hashlib.sha256).hexdigest()
    return "Fk" + digest[:13] + "!"


def _plain(value: Decimal) -> str:
    """OKX style: plain decimal, no exponent, no trailing zeros ("0.5", "1000", "0")."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


def _error(code: str, msg: str, status: int) -> Response:
    return FakeExchange.json_response({"code": code, "msg": msg, "data": []}, status)


def _ok(data: list) -> Response:
    return FakeExchange.json_response({"code": "0", "msg": "", "data": data})


def _tick(symbol: str, price: Decimal) -> str:
    if symbol in _TICKS:
        return _TICKS[symbol]
    return "0.0001" if price < 100 else "0.01"


class FakeOKX(FakeExchange):
    """OKX v5 spot REST fake; see the module docstring for endpoints, rules and error mapping.
    All shared state is guarded by the single ``self.lock`` of ``FakeExchange``."""

    name = "okx"
    public_routes = {
        "/api/v5/public/instruments": "public_instruments",
        "/api/v5/market/tickers": "public_tickers",
        "/api/v5/market/ticker": "public_ticker",
        "/api/v5/public/time": "public_time",
    }
    private_routes = {
        "/api/v5/account/balance": "private_balance",
        "/api/v5/asset/currencies": "private_currencies",
    }
    #: OKX's global site has no USD spot markets; USDT/USDC/EUR/BTC quotes instead.
    default_prices = {
        "BTC/USDT": "50000", "ETH/USDT": "3000", "DOT/USDT": "7.15", "EUR/USDT": "1.10",
        "USDC/USDT": "1.00", "ETH/BTC": "0.06", "BTC/EUR": "45454.5", "ETH/EUR": "2727.27",
        "DOT/EUR": "6.50", "USDT/EUR": "0.9091", "BTC/USDC": "50000", "ETH/USDC": "3000",
    }
    auto_balances = {"USDT": "100", "BTC": "0.01"}
    nonce_strict = False  # timestamps: only a timestamp lower than the previous one is a breach
    extra_faults = EXTRA_FAULTS
    #: ``enforce_limits``: balance 10/2 s per key, public 20/2 s per address (exchange_limits)
    limit_rules_class = OkxRules

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # why the last verify_signature of this handler thread failed (picks the error body)
        self._auth_failure = threading.local()

    # ------------------------------------------------------------------ faults
    def inject(self, fault: str, api_key=None, count: int = 1) -> None:
        """As ``FakeExchange.inject``, plus ``"http_503"`` (50001) and ``"system_busy"`` (50013)."""
        if fault not in EXTRA_FAULTS:
            return super().inject(fault, api_key, count)
        self._enqueue_fault(fault, api_key, count)  # base's own check only knows base.FAULTS

    # ------------------------------------------------------------------ credentials
    def new_credentials(self) -> tuple:
        api_key = str(uuid.uuid4())
        secret = secrets.token_hex(16).upper()
        passphrase = "".join(secrets.choice(_PASS_ALPHABET) for _ in range(14)) + "#1"
        return api_key, secret, passphrase

    def derive_credentials(self, api_key: str):
        return derive_secret(api_key), derive_passphrase(api_key)

    def prepare_account(self, account: Account) -> None:
        account.extra["key"] = account.secret.encode("utf-8")

    # ------------------------------------------------------------------ auth
    def extract_key(self, req: Request):
        return req.headers.get("OK-ACCESS-KEY") or None

    def verify_signature(self, req: Request, account: Account) -> bool:
        headers = req.headers
        passphrase = headers.get("OK-ACCESS-PASSPHRASE")
        sent = headers.get("OK-ACCESS-SIGN")
        stamp = headers.get("OK-ACCESS-TIMESTAMP")
        reason = None
        if not passphrase:
            reason = "no_passphrase"
        elif not sent:
            reason = "no_sign"
        elif not stamp:
            reason = "no_timestamp"
        elif not hmac.compare_digest(passphrase.encode("utf-8"),
                                     (account.passphrase or "").encode("utf-8")):
            reason = "passphrase"
        else:
            prehash = stamp + req.method + req.target + req.body.decode("utf-8", "replace")
            mac = hmac.new(account.extra["key"], prehash.encode("utf-8"), hashlib.sha256).digest()
            if not hmac.compare_digest(base64.b64encode(mac), sent.strip().encode("utf-8")):
                reason = "signature"
        self._auth_failure.reason = reason
        return reason is None

    def extract_nonce(self, req: Request):
        """OK-ACCESS-TIMESTAMP ("2024-05-01T12:00:00.123Z") in epoch milliseconds; None if absent
        or not ISO 8601 UTC."""
        stamp = req.headers.get("OK-ACCESS-TIMESTAMP") or ""
        if not stamp.endswith("Z"):
            return None
        try:
            moment = datetime.fromisoformat(stamp[:-1] + "+00:00")
        except ValueError:
            return None
        return int(round(moment.timestamp() * 1000))

    def check_request(self, req: Request, account: Account, nonce):
        """30 s timestamp window (under the lock). Base has already stored ``nonce`` as the key's
        last one; an out-of-window timestamp is put back to the previous accepted value."""
        if nonce is None:
            self.count_violation("nonce")
            return _error("50112", "Invalid OK-ACCESS-TIMESTAMP", 401)
        if abs(time.time() * 1000.0 - nonce) > _WINDOW_MS:
            account.last_nonce = account.extra.get("ok_nonce")
            self.count_violation("nonce")
            return _error("50102", "Timestamp request expired", 401)
        account.extra["ok_nonce"] = nonce
        return None

    # ------------------------------------------------------------------ errors
    def error_response(self, kind: str, req: Request) -> Response:
        if kind == "signature":
            reason = getattr(self._auth_failure, "reason", None)
            if reason == "no_passphrase":
                return _error("50104", 'Request header "OK-ACCESS-PASSPHRASE" can not be empty.',
                              401)
            if reason == "no_sign":
                return _error("50106", 'Request header "OK-ACCESS-SIGN" can not be empty.', 401)
            if reason == "no_timestamp":
                return _error("50107", 'Request header "OK-ACCESS-TIMESTAMP" can not be empty.',
                              401)
            if reason == "passphrase":
                return _error("50105", 'Request header "OK-ACCESS-PASSPHRASE" incorrect.', 401)
            return _error("50113", "Invalid Sign", 401)
        if kind == "unknown_key":
            if not self.extract_key(req):
                return _error("50103", 'Request header "OK-ACCESS-KEY" can not be empty.', 401)
            return _error("50111", "Invalid OK-ACCESS-KEY", 401)
        if kind == "invalid_key":
            return _error("50111", "Invalid OK-ACCESS-KEY", 401)
        if kind == "invalid_nonce":
            return _error("50102", "Timestamp request expired", 401)
        if kind in ("rate_limit", "http_429"):
            return _error("50011", "Too Many Requests", 429)
        if kind == "http_500":
            return _error("50026", "System error. Try again later.", 500)
        if kind == "http_503":
            return _error("50001", "Service temporarily unavailable. Try again later.", 503)
        if kind == "system_busy":
            return _error("50013", "Systems are busy. Please try again later.", 200)
        if kind == "malformed_json":
            return Response(200, b'{"code":"0","data":[{"details":[{"availBal":"0.5","ccy":"BT',
                            "application/json")
        if kind == "not_found":
            return Response(404, b"<html><body><h1>404 Not Found</h1></body></html>", "text/html")
        return super().error_response(kind, req)

    # ------------------------------------------------------------------ public handlers
    @staticmethod
    def _inst_id(symbol: str) -> str:
        return symbol.replace("/", "-")

    def _inst_type_error(self, req: Request):
        """None if ``instType`` is SPOT; an empty-data or error Response otherwise."""
        inst_type = req.query.get("instType")
        if not inst_type:
            return _error("50014", "Parameter instType can not be empty.", 400)
        if inst_type in ("MARGIN", "SWAP", "FUTURES", "OPTION"):
            return _ok([])  # this fake lists spot instruments only
        if inst_type != "SPOT":
            return _error("51000", "Parameter instType error", 400)
        return None

    def public_time(self, req: Request) -> Response:
        return _ok([{"ts": str(int(time.time() * 1000))}])

    def public_instruments(self, req: Request) -> Response:
        not_spot = self._inst_type_error(req)
        if not_spot is not None:
            return not_spot
        wanted = req.query.get("instId")
        data = []
        for symbol, price in self.prices.items():
            inst_id = self._inst_id(symbol)
            if wanted and inst_id != wanted:
                continue
            base, quote = symbol.split("/")
            data.append({
                "alias": "", "auctionEndTime": "", "baseCcy": base, "category": "1",
                "ctMult": "", "ctType": "", "ctVal": "", "ctValCcy": "", "expTime": "",
                "instFamily": "", "instId": inst_id, "instType": "SPOT", "lever": "",
                "listTime": "1606468572000", "lotSz": "0.00000001",
                "maxIcebergSz": "9999999999.0000000000000000", "maxLmtAmt": "1000000",
                "maxLmtSz": "9999999999", "maxMktAmt": "1000000", "maxMktSz": "1000000",
                "maxStopSz": "1000000", "maxTriggerSz": "9999999999.0000000000000000",
                "maxTwapSz": "9999999999.0000000000000000", "minSz": "0.00001", "optType": "",
                "quoteCcy": quote, "ruleType": "normal", "settleCcy": "", "state": "live",
                "stk": "", "tickSz": _tick(symbol, price), "uly": "",
            })
        if wanted and not data:
            return _error("51001", "Instrument ID does not exist", 400)
        return _ok(data)

    def _ticker(self, symbol: str, now: str) -> dict:
        p = _plain(self.prices[symbol])
        return {"instType": "SPOT", "instId": self._inst_id(symbol), "last": p,
                "lastSz": "0.01", "askPx": p, "askSz": "1", "bidPx": p, "bidSz": "1",
                "open24h": p, "high24h": p, "low24h": p,
                "volCcy24h": _plain(self.prices[symbol] * 100), "vol24h": "100",
                "ts": now, "sodUtc0": p, "sodUtc8": p}

    def public_tickers(self, req: Request) -> Response:
        not_spot = self._inst_type_error(req)
        if not_spot is not None:
            return not_spot
        now = str(int(time.time() * 1000))
        return _ok([self._ticker(symbol, now) for symbol in self.prices])

    def public_ticker(self, req: Request) -> Response:
        inst_id = req.query.get("instId")
        if not inst_id:
            return _error("50014", "Parameter instId can not be empty.", 400)
        symbol = inst_id.replace("-", "/")
        if symbol not in self.prices:
            return _error("51001", "Instrument ID does not exist", 400)
        return _ok([self._ticker(symbol, str(int(time.time() * 1000)))])

    # ------------------------------------------------------------------ private handlers
    def _usd_value(self, code: str, amount: Decimal):
        """Best-effort USD(T) value for ``eqUsd``: direct USDT/USDC pair or its inverse."""
        if code in ("USD", "USDT", "USDC"):
            return amount
        for quote in ("USDT", "USDC"):
            price = self.prices.get(f"{code}/{quote}")
            if price is not None:
                return amount * price
            inverse = self.prices.get(f"{quote}/{code}")
            if inverse:
                return amount / inverse
        return None

    def private_balance(self, req: Request, account: Account) -> Response:
        wanted = req.query.get("ccy")
        wanted = set(wanted.split(",")) if wanted else None
        now = str(int(time.time() * 1000))
        details = []
        total_usd = Decimal(0)
        for code, amount in account.balances.items():
            if wanted is not None and code not in wanted:
                continue
            usd = self._usd_value(code, amount)
            total_usd += usd or 0
            a = _plain(amount)
            details.append({
                "availBal": a, "availEq": "", "borrowFroz": "", "cashBal": a, "ccy": code,
                "clSpotInUseAmt": "", "crossLiab": "", "disEq": _plain(usd or Decimal(0)),
                "eq": a, "eqUsd": "" if usd is None else _plain(usd), "fixedBal": "0",
                "frozenBal": "0", "imr": "", "interest": "", "isoEq": "0", "isoLiab": "",
                "isoUpl": "0", "liab": "", "maxLoan": "", "maxSpotInUse": "", "mgnRatio": "",
                "mmr": "", "notionalLever": "", "ordFrozen": "0", "rewardBal": "0",
                "smtSyncEq": "0", "spotBal": "", "spotInUseAmt": "", "spotIsoBal": "0",
                "stgyEq": "0", "twap": "0", "uTime": now, "upl": "", "uplLiab": "",
            })
        return _ok([{
            "adjEq": "", "borrowFroz": "", "details": details, "imr": "", "isoEq": "0",
            "mgnRatio": "", "mmr": "", "notionalUsd": "", "ordFroz": "",
            "totalEq": _plain(total_usd), "uTime": now, "upl": "",
        }])

    def private_currencies(self, req: Request, account: Account) -> Response:
        codes = {}
        for symbol in self.prices:
            for code in symbol.split("/"):
                codes.setdefault(code)
        wanted = req.query.get("ccy")
        wanted = set(wanted.split(",")) if wanted else None
        data = []
        for code in codes:
            if wanted is not None and code not in wanted:
                continue
            chain, name, decimals = _CHAINS.get(code, (code, code, 8))
            data.append({
                "canDep": True, "canInternal": True, "canWd": True, "ccy": code,
                "chain": f"{code}-{chain}" if chain else "", "depQuotaFixed": "",
                "depQuoteDailyLayer2": "", "fee": "0", "logoLink": "", "mainNet": True,
                "maxFee": "0", "maxFeeForCtAddr": "", "maxWd": "1000000",
                "minDep": "0.00000001", "minDepArrivalConfirm": "1", "minFee": "0",
                "minFeeForCtAddr": "", "minWd": "0.0001", "minWdUnlockConfirm": "1",
                "name": name, "needTag": False, "usedDepQuotaFixed": "", "usedWdQuota": "0",
                "wdQuota": "10000000", "wdTickSz": str(decimals),
            })
        return _ok(data)
