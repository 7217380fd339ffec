"""FakeCoinbase: a loopback Coinbase Advanced Trade (v3) REST API, plus the few v2 public
endpoints ccxt's ``load_markets`` insists on.

What ccxt 4.5.x (``ccxt.coinbase`` with ``CCXT_OPTIONS``) calls, and so what this fake serves:
  load_markets (public instance, no keys):
    GET /v2/currencies, /v2/currencies/crypto, /v2/exchange-rates   (ccxt ``fetch_currencies``;
        ``has['fetchCurrencies']`` cannot be switched off by an option)
    GET /api/v3/brokerage/market/products                          (spot products)
    GET /api/v3/brokerage/market/products?product_type=FUTURE      (always asked; answered with an
        empty product list: this fake has no futures)
    (an instance WITH keys also calls the private GET /api/v3/brokerage/transaction_summary;
     served, but the product shares markets with ``set_markets_from_exchange`` so it never does)
  fetch_tickers: GET /api/v3/brokerage/market/products (``product_ids`` filter honoured)
  fetch_balance: GET /api/v3/brokerage/accounts?limit=250[&cursor=...], following
    ``has_next``/``cursor`` until the last page. A page holds min(limit, ``page_size``) wallets
    (``page_size`` defaults to 250 and is a constructor argument; limit defaults to 49 as on
    Coinbase and is clamped to 1..250).
  Also served: GET /api/v3/brokerage/time, /v2/time, /api/v3/brokerage/market/products/{id},
  and the private GET /api/v3/brokerage/products. Anything else -> 404 ``NOT_FOUND``.

Authentication (both schemes ccxt implements; ``add_account(..., scheme="cdp"|"hmac")``):
  cdp (default): api key ``organizations/{org}/apiKeys/{id}``, secret an EC P-256 private key in
      PEM (``-----BEGIN EC PRIVATE KEY-----``). Each request carries ``Authorization: Bearer JWT``:
      header {alg: ES256, kid: key, nonce}, claims {sub: key, iss: "cdp"|"coinbase-cloud",
      nbf, iat, exp, uri: "METHOD host/path"}. Checked: ES256 signature with the key's public key,
      kid == sub == the key, iss, aud (if present), the ``uri`` claim against the request method,
      ``Host`` header and path (query excluded, as ccxt and Coinbase do; an ``http://`` after the
      method is tolerated because ccxt only strips ``https://`` and we serve plain http),
      lifetime exp - nbf <= 120 s. Time rules: nbf - 30 s <= now <= exp, iat not lower than the
      key's previous iat, header nonce never seen before for that key (replay) -> nonce violation.
  hmac (legacy): CB-ACCESS-KEY (16 chars), CB-ACCESS-SIGN = hex HMAC-SHA256(secret (32 chars),
      timestamp + METHOD + path + body) with the path WITHOUT the query string for v3 GETs (what
      ccxt signs; path + '?' + query is accepted too), CB-ACCESS-TIMESTAMP in seconds. A timestamp
      more than 30 s away from server time, or lower than the key's previous one -> nonce
      violation (equal is fine: ccxt's timestamp is whole seconds).

Error mapping (what ccxt 4.5.90 raises, via ``coinbase.handle_errors`` and ``httpExceptions``):
  bad signature / bad JWT / unknown key / injected invalid_key
      -> 401 {"error": "unauthorized", ...}                         -> AuthenticationError
  old/replayed timestamp or JWT nonce / injected invalid_nonce
      -> 401 {"errors": [{"id": "authentication_error", "message": "request timestamp expired"}]}
      -> AuthenticationError, exactly as with the real Coinbase (ccxt issues #5979, #8587): ccxt
         maps the *message* broadly to InvalidNonce, but the exact match on the id
         ``authentication_error`` is checked first and wins
  spacing breach (min_interval) / injected http_429
      -> 429 {"errors": [{"id": "rate_limit_exceeded", "message": "Too many requests"}]}
      -> RateLimitExceeded (any 429 does, via the body or ``httpExceptions``; in ccxt 4.5.90 it
         is a NetworkError but NOT a subclass of DDoSProtection)
  injected http_500 -> 500 text/plain               -> ExchangeNotAvailable
  injected http_502 -> 502 HTML (gateway page)      -> ExchangeNotAvailable
  injected malformed_json -> 200 truncated JSON     -> plain ``TypeError`` from ccxt's
      fetch_balance (it assigns ``response['accounts']`` on the undecoded string), not a ccxt error
  unknown path -> 404 {"error": "NOT_FOUND", ...}   -> ExchangeError

Balances render as Coinbase does: one wallet per currency (ACCOUNT_TYPE_CRYPTO "BTC Wallet" or
ACCOUNT_TYPE_FIAT "Cash (USD)"), ``available_balance``/``hold`` values as strings with 16
decimals (crypto) or 2 (fiat); hold is always 0. Unified codes equal Coinbase's ids.

Locking: all shared state lives behind ``FakeExchange.lock`` (see base.py); the per-key JWT
nonce memory is kept in ``Account.extra`` and touched only with that lock held.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import string
import time
import uuid
from collections import deque
from datetime import datetime, timezone
from decimal import Decimal
from typing import Optional
from urllib.parse import parse_qs

from .base import Account, FakeExchange, Request, Response
from .exchange_limits import CoinbaseRules

try:  # the cdp scheme needs `cryptography` (ccxt itself depends on it for ES256)
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
except ImportError:  # pragma: no cover - only hmac accounts then
    ec = None

__all__ = ["FakeCoinbase", "CCXT_OPTIONS", "derive_secret", "SCHEMES"]

#: ccxt options for coinbase. ``fetchBalance``: read the Advanced Trade wallets
#: (GET /api/v3/brokerage/accounts, paginated by ccxt) instead of the v2 private /v2/accounts.
#: The others pin ccxt's current defaults (v3 public products for markets/tickers, v3 time) so a
#: ccxt upgrade changing a default cannot silently move us to other endpoints.
CCXT_OPTIONS = {
    "fetchBalance": "v3PrivateGetBrokerageAccounts",
    "fetchMarkets": "fetchMarketsV3",
    "fetchTickers": "fetchTickersV3",
    "fetchTicker": "fetchTickerV3",
    "fetchTime": "v3PublicGetBrokerageTime",
}

SCHEMES = ("cdp", "hmac")
#: seconds a CB-ACCESS-TIMESTAMP (or a JWT nbf) may be away from server time
TIMESTAMP_WINDOW = 30
#: longest JWT lifetime accepted (exp - nbf); ccxt and Coinbase's SDKs use 120 s
JWT_MAX_LIFETIME = 120
_JWT_ISSUERS = ("cdp", "coinbase-cloud")
_JWT_AUDIENCES = ("retail_rest_api_proxy", "cdp_service")
_AUTO_SEED = b"multibalance-fake-coinbase-auto-accounts"
_ALNUM = string.ascii_letters + string.digits
_UUID_NS = uuid.UUID("5b0f1a52-8f3e-4c55-9d55-6c6f696e6261")

FIAT = {"USD", "EUR", "GBP", "CAD", "SGD", "CHF", "AUD"}
#: code -> display name (unknown codes use the code itself)
NAMES = {
    "USD": "US Dollar", "EUR": "Euro", "GBP": "British Pound", "CAD": "Canadian Dollar",
    "SGD": "Singapore Dollar", "CHF": "Swiss Franc", "AUD": "Australian Dollar",
    "BTC": "Bitcoin", "ETH": "Ethereum", "DOT": "Polkadot", "USDT": "Tether",
    "USDC": "USDC", "SOL": "Solana", "LTC": "Litecoin", "ADA": "Cardano", "XRP": "XRP",
    "DOGE": "Dogecoin",
}


# ---------------------------------------------------------------------------- credentials
def _is_cdp_key(api_key: str) -> bool:
    return api_key.startswith("organizations/")


def _cdp_key_name(org: str, key_id: str) -> str:
    return f"organizations/{org}/apiKeys/{key_id}"


def _pem_of(private_key) -> str:
    return private_key.private_bytes(serialization.Encoding.PEM,
                                     serialization.PrivateFormat.TraditionalOpenSSL,
                                     serialization.NoEncryption()).decode("ascii")


def new_cdp_credentials() -> tuple:
    """(key name, EC PEM secret) in the format Coinbase's CDP key download uses."""
    if ec is None:
        raise RuntimeError("the cdp scheme needs the `cryptography` package")
    name = _cdp_key_name(str(uuid.uuid4()), str(uuid.uuid4()))
    return name, _pem_of(ec.generate_private_key(ec.SECP256R1()))


def new_hmac_credentials() -> tuple:
    """(16-char key, 32-char secret): Coinbase's legacy API key format."""
    return ("".join(secrets.choice(_ALNUM) for _ in range(16)),
            "".join(secrets.choice(_ALNUM) for _ in range(32)))


def derive_secret(api_key: str) -> str:
    """The secret an auto-account ``api_key`` must use. A CDP key name ("organizations/...")
    gets a deterministic EC P-256 PEM; any other key a deterministic 32-char legacy secret."""
    digest = hmac.new(_AUTO_SEED, api_key.encode("utf-8"), hashlib.sha512).digest()
    if _is_cdp_key(api_key):
        if ec is None:
            raise RuntimeError("the cdp scheme needs the `cryptography` package")
        order = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551  # P-256 n
        value = int.from_bytes(digest, "big") % (order - 1) + 1
        return _pem_of(ec.derive_private_key(value, ec.SECP256R1()))
    return "".join(_ALNUM[b % len(_ALNUM)] for b in digest[:32])


# ---------------------------------------------------------------------------- JWT helpers
def _b64url_decode(data: str) -> bytes:
    return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))


def _parse_jwt(req: Request) -> Optional[tuple]:
    """(header, claims, signing input, raw signature) of the Bearer token, or None."""
    auth = req.headers.get("Authorization") or ""
    if not auth.startswith("Bearer "):
        return None
    token = auth[7:].strip()
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        header = json.loads(_b64url_decode(parts[0]))
        claims = json.loads(_b64url_decode(parts[1]))
        signature = _b64url_decode(parts[2])
    except (ValueError, TypeError):
        return None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        return None
    return header, claims, (parts[0] + "." + parts[1]).encode("ascii"), signature


def _int_claim(claims: dict, name: str) -> Optional[int]:
    value = claims.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


# ---------------------------------------------------------------------------- rendering
def _num(value: Decimal) -> str:
    """Plain decimal string without exponent or trailing zeros ("50000", "6.5", "0.06")."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


def _amount(value: Decimal, places: int) -> str:
    """``places`` fixed decimals, unless the value is more precise (then exact)."""
    quantum = Decimal(1).scaleb(-places)
    fixed = value.quantize(quantum)
    return format(fixed if fixed == value else value, "f")


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _v3_error(status: int, error: str, message: str, details: str = "") -> Response:
    return FakeExchange.json_response(
        {"error": error, "error_details": details or message, "message": message}, status)


def _v2_error(status: int, error_id: str, message: str) -> Response:
    return FakeExchange.json_response({"errors": [{"id": error_id, "message": message}]}, status)


class FakeCoinbase(FakeExchange):
    """Coinbase Advanced Trade fake (see the module docstring for the wire contract).

    Extra constructor argument ``page_size`` (default 250): wallets per /accounts page.
    ``add_account(balances, scheme="cdp"|"hmac")`` chooses the key type (default
    ``default_scheme``, "cdp"). In ``auto_accounts`` mode both kinds are accepted: a key named
    "organizations/..." must sign JWTs with ``derive_secret(key)`` as PEM, any other key HMACs."""

    name = "coinbase"
    public_routes = {
        "/v2/currencies": "public_currencies",
        "/v2/currencies/crypto": "public_currencies_crypto",
        "/v2/exchange-rates": "public_exchange_rates",
        "/v2/time": "public_time_v2",
        "/api/v3/brokerage/time": "public_time",
        "/api/v3/brokerage/market/products": "public_products",
    }
    private_routes = {
        "/api/v3/brokerage/accounts": "private_accounts",
        "/api/v3/brokerage/transaction_summary": "private_transaction_summary",
        "/api/v3/brokerage/products": "private_products",
    }
    #: Coinbase lists neither EUR-USD nor USDC-USD (USDC trades as USD there); they are kept for
    #: the shared default market list of the spec.
    default_prices = {
        "BTC/USD": "50000", "ETH/USD": "3000", "BTC/EUR": "45454.55", "EUR/USD": "1.10",
        "DOT/EUR": "6.50", "DOT/USD": "7.15", "ETH/BTC": "0.06", "ETH/EUR": "2727.27",
        "USDT/USD": "1.00", "USDC/USD": "1.00", "BTC/USDT": "50000", "ETH/USDT": "3000",
        "USDT/EUR": "0.9091", "USDC/EUR": "0.9091",
    }
    auto_balances = {"USD": "100", "BTC": "0.01"}
    nonce_strict = False  # timestamps: only a LOWER one than the key's previous is a violation
    default_scheme = "cdp"
    #: ``enforce_limits``: private 30/s per key, public 10/s per address (exchange_limits)
    limit_rules_class = CoinbaseRules

    def __init__(self, *args, page_size: int = 250, **kwargs):
        super().__init__(*args, **kwargs)
        if int(page_size) < 1:
            raise ValueError("page_size must be >= 1")
        self.page_size = int(page_size)

    # ------------------------------------------------------------------ credentials
    def add_account(self, balances: Optional[dict] = None, scheme: Optional[str] = None) -> dict:
        """Create an account; ``scheme`` "cdp" (EC key, JWT auth; default) or "hmac" (legacy)."""
        scheme = scheme or self.default_scheme
        if scheme not in SCHEMES:
            raise ValueError(f"unknown scheme {scheme!r}; expected one of {SCHEMES}")
        api_key, secret = new_cdp_credentials() if scheme == "cdp" else new_hmac_credentials()
        acct = self._make_account(api_key, secret, None, balances or {})
        with self.lock:
            self.accounts[api_key] = acct
        return {"api_key": api_key, "api_secret": secret, "passphrase": None}

    def new_credentials(self) -> tuple:
        if self.default_scheme == "cdp":
            return (*new_cdp_credentials(), None)
        return (*new_hmac_credentials(), None)

    def derive_credentials(self, api_key: str):
        if _is_cdp_key(api_key) and ec is None:
            return None
        return derive_secret(api_key), None

    def prepare_account(self, account: Account) -> None:
        extra = account.extra
        if _is_cdp_key(account.api_key) or account.secret.startswith("-----BEGIN"):
            extra["scheme"] = "cdp"
            try:
                key = serialization.load_pem_private_key(account.secret.encode("ascii"), None)
                extra["public_key"] = key.public_key()
            except (ValueError, TypeError, AttributeError):
                extra["public_key"] = None
            extra["jwt_nonces"] = {}            # nonce -> exp, for replay detection
            extra["jwt_nonce_order"] = deque()  # (exp, nonce) in arrival order, for pruning
        else:
            extra["scheme"] = "hmac"
            extra["secret_bytes"] = account.secret.encode("utf-8")

    # ------------------------------------------------------------------ routing
    def route(self, req: Request):
        if req.method != "GET":
            return None
        routed = super().route(req)
        if routed is None and req.path.startswith("/api/v3/brokerage/market/products/"):
            product_id = req.path[len("/api/v3/brokerage/market/products/"):]
            if product_id and "/" not in product_id:
                return "public", self.public_product
        return routed

    # ------------------------------------------------------------------ auth
    def extract_key(self, req: Request) -> Optional[str]:
        jwt = _parse_jwt(req)
        if jwt is not None:
            sub = jwt[1].get("sub")
            return sub if isinstance(sub, str) else None
        return req.headers.get("CB-ACCESS-KEY")

    def verify_signature(self, req: Request, account: Account) -> bool:
        if account.extra.get("scheme") == "cdp":
            return self._verify_jwt(req, account)
        return self._verify_hmac(req, account)

    @staticmethod
    def _verify_hmac(req: Request, account: Account) -> bool:
        if req.headers.get("Authorization"):
            return False  # a legacy key does not sign JWTs
        key = req.headers.get("CB-ACCESS-KEY")
        sent = (req.headers.get("CB-ACCESS-SIGN") or "").strip().lower()
        stamp = req.headers.get("CB-ACCESS-TIMESTAMP")
        if key != account.api_key or not sent or not stamp:
            return False
        secret = account.extra["secret_bytes"]
        body = req.body.decode("utf-8", "replace")
        for path in ((req.path, req.target) if req.raw_query else (req.path,)):
            message = (stamp + req.method + path + body).encode("utf-8")
            if hmac.compare_digest(hmac.new(secret, message, hashlib.sha256).hexdigest(), sent):
                return True
        return False

    @staticmethod
    def _verify_jwt(req: Request, account: Account) -> bool:
        public_key = account.extra.get("public_key")
        jwt = _parse_jwt(req)
        if public_key is None or jwt is None:
            return False
        header, claims, signing_input, signature = jwt
        if header.get("alg") != "ES256" or header.get("kid") != account.api_key:
            return False
        if claims.get("sub") != account.api_key or claims.get("iss") not in _JWT_ISSUERS:
            return False
        aud = claims.get("aud")
        if aud is not None:
            auds = aud if isinstance(aud, list) else [aud]
            if not any(a in _JWT_AUDIENCES for a in auds):
                return False
        nbf, exp = _int_claim(claims, "nbf"), _int_claim(claims, "exp")
        if nbf is None or exp is None or not 0 < exp - nbf <= JWT_MAX_LIFETIME:
            return False
        uri = claims.get("uri")
        if not isinstance(uri, str):
            uris = claims.get("uris")
            uri = uris[0] if isinstance(uris, list) and len(uris) == 1 else None
        host = req.headers.get("Host") or ""
        if uri not in (f"{req.method} {host}{req.path}", f"{req.method} http://{host}{req.path}"):
            return False
        if len(signature) != 64:
            return False
        der = encode_dss_signature(int.from_bytes(signature[:32], "big"),
                                   int.from_bytes(signature[32:], "big"))
        try:
            public_key.verify(der, signing_input, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            return False
        return True

    def extract_nonce(self, req: Request) -> Optional[int]:
        """The request's timestamp (HMAC CB-ACCESS-TIMESTAMP, or the JWT's iat) when it lies in
        the accepted window, else None (``check_request`` then answers the nonce error)."""
        return self._timestamp_in_window(req, time.time())

    @staticmethod
    def _timestamp_in_window(req: Request, now: float) -> Optional[int]:
        jwt = _parse_jwt(req)
        if jwt is not None:
            claims = jwt[1]
            nbf, exp = _int_claim(claims, "nbf"), _int_claim(claims, "exp")
            iat = _int_claim(claims, "iat")
            if nbf is None or exp is None:
                return None
            if not nbf - TIMESTAMP_WINDOW <= now <= exp:
                return None
            return iat if iat is not None else nbf
        try:
            stamp = int(req.headers.get("CB-ACCESS-TIMESTAMP") or "")
        except ValueError:
            return None
        return stamp if abs(now - stamp) <= TIMESTAMP_WINDOW else None

    def check_request(self, req: Request, account: Account, nonce) -> Optional[Response]:
        """Lock held. Rejects an out-of-window timestamp and a replayed JWT nonce."""
        if nonce is None:
            self.count_violation("nonce")
            return self.error_response("invalid_nonce", req)
        if account.extra.get("scheme") == "cdp":
            header, claims = _parse_jwt(req)[:2]
            jwt_nonce = header.get("nonce")
            seen, order = account.extra["jwt_nonces"], account.extra["jwt_nonce_order"]
            if not isinstance(jwt_nonce, str) or not jwt_nonce or jwt_nonce in seen:
                self.count_violation("nonce")
                return self.error_response("invalid_nonce", req)
            exp = claims["exp"]
            seen[jwt_nonce] = exp
            order.append((exp, jwt_nonce))
            now = time.time()
            while order and (order[0][0] < now - TIMESTAMP_WINDOW or len(order) > 100_000):
                _exp, old = order.popleft()  # expired tokens are rejected anyway: forget them
                seen.pop(old, None)
        return None

    def error_response(self, kind: str, req: Request) -> Response:
        if kind in ("signature", "unknown_key", "invalid_key"):
            return _v3_error(401, "unauthorized", "Unauthorized",
                             "invalid signature" if kind == "signature" else "invalid api key")
        if kind == "invalid_nonce":
            return _v2_error(401, "authentication_error", "request timestamp expired")
        if kind in ("rate_limit", "http_429"):
            return _v2_error(429, "rate_limit_exceeded", "Too many requests")
        if kind == "malformed_json":
            return Response(200, b'{"accounts":[{"uuid":"8d1c5a3e-', "application/json")
        if kind == "not_found":
            return _v3_error(404, "NOT_FOUND", "Not Found", "route not found")
        return super().error_response(kind, req)

    # ------------------------------------------------------------------ market data (lock held)
    def _codes(self) -> list:
        codes = {}
        for symbol in self.prices:
            for code in symbol.split("/"):
                codes.setdefault(code)
        return list(codes)

    def _usd_values(self) -> dict:
        """code -> value in USD, walking the market graph from USD."""
        edges: dict = {}
        for symbol, price in self.prices.items():
            base, quote = symbol.split("/")
            if price > 0:
                edges.setdefault(quote, []).append((base, price))            # base = quote * p
                edges.setdefault(base, []).append((quote, Decimal(1) / price))
        values = {"USD": Decimal(1)}
        queue = deque(["USD"])
        while queue:
            code = queue.popleft()
            for other, factor in edges.get(code, ()):
                if other not in values:
                    values[other] = values[code] * factor
                    queue.append(other)
        return values

    def _product(self, symbol: str, price: Decimal) -> dict:
        base, quote = symbol.split("/")
        product_id = f"{base}-{quote}"
        if quote in FIAT:
            increment = "0.01" if price >= 10 else "0.0001"
        else:
            increment = "0.00001"
        return {
            "product_id": product_id, "price": _num(price),
            "price_percentage_change_24h": "0", "volume_24h": "1000",
            "volume_percentage_change_24h": "0", "base_increment": "0.00000001",
            "quote_increment": increment, "quote_min_size": "1", "quote_max_size": "10000000",
            "base_min_size": "0.00000001", "base_max_size": "10000",
            "base_name": NAMES.get(base, base), "quote_name": NAMES.get(quote, quote),
            "watched": False, "is_disabled": False, "new": False, "status": "online",
            "cancel_only": False, "limit_only": False, "post_only": False,
            "trading_disabled": False, "auction_mode": False, "product_type": "SPOT",
            "quote_currency_id": quote, "base_currency_id": base,
            "fcm_trading_session_details": None, "mid_market_price": "", "alias": "",
            "alias_to": [], "base_display_symbol": base, "quote_display_symbol": quote,
            "view_only": False, "price_increment": increment, "display_name": product_id,
            "product_venue": "CBE", "approximate_quote_24h_volume": _num(price * 1000),
        }

    def _products_response(self, req: Request) -> Response:
        multi = parse_qs(req.raw_query, keep_blank_values=True) if req.raw_query else {}
        product_type = (multi.get("product_type") or [""])[0].upper()
        wanted = set(multi.get("product_ids") or ())
        products = []
        if product_type in ("", "SPOT", "UNKNOWN_PRODUCT_TYPE"):
            for symbol, price in self.prices.items():
                if wanted and symbol.replace("/", "-") not in wanted:
                    continue
                products.append(self._product(symbol, price))
        return self.json_response({"products": products, "num_products": len(products)})

    # ------------------------------------------------------------------ public handlers
    def public_currencies(self, req: Request) -> Response:
        data = [{"id": code, "name": NAMES.get(code, code), "min_size": "0.01"}
                for code in self._codes() if code in FIAT]
        return self.json_response({"data": data})

    def public_currencies_crypto(self, req: Request) -> Response:
        data = []
        for index, code in enumerate(c for c in self._codes() if c not in FIAT):
            data.append({
                "asset_id": str(uuid.uuid5(_UUID_NS, "asset:" + code)), "code": code,
                "name": NAMES.get(code, code), "color": "#0052FF", "sort_index": 100 + index,
                "exponent": 8, "type": "crypto", "address_regex": "^.+$",
            })
        return self.json_response({"data": data})

    def public_exchange_rates(self, req: Request) -> Response:
        """Rates = units of each currency per 1 ``currency`` (query, default USD)."""
        values = self._usd_values()
        reference = (req.query.get("currency") or "USD").upper()
        ref_value = values.get(reference)
        if ref_value is None:
            return _v2_error(400, "invalid_request", "Invalid currency")
        rates = {}
        for code, value in values.items():
            if value > 0:
                rate = (ref_value / value).quantize(Decimal("1e-12"))
                rates[code] = _num(rate) if rate else _num(ref_value / value)
        return self.json_response({"data": {"currency": reference, "rates": rates}})

    def public_time(self, req: Request) -> Response:
        now = time.time()
        return self.json_response({"iso": _iso(now), "epochSeconds": str(int(now)),
                                   "epochMillis": str(int(now * 1000))})

    def public_time_v2(self, req: Request) -> Response:
        now = time.time()
        return self.json_response({"data": {"iso": _iso(now)[:19] + "Z", "epoch": int(now)}})

    def public_products(self, req: Request) -> Response:
        return self._products_response(req)

    def public_product(self, req: Request) -> Response:
        product_id = req.path.rsplit("/", 1)[1]
        symbol = product_id.replace("-", "/")
        price = self.prices.get(symbol)
        if price is None:
            return _v3_error(404, "NOT_FOUND", "ProductID is invalid", "Product not found")
        return self.json_response(self._product(symbol, price))

    # ------------------------------------------------------------------ private handlers
    def _wallet(self, account: Account, code: str, amount: Decimal) -> dict:
        fiat = code in FIAT
        places = 2 if fiat else 16
        stamp = "2023-01-04T06:20:06.456Z"
        return {
            "uuid": str(uuid.uuid5(_UUID_NS, f"wallet:{account.api_key}:{code}")),
            "name": f"Cash ({code})" if fiat else f"{code} Wallet",
            "currency": code,
            "available_balance": {"value": _amount(amount, places), "currency": code},
            "default": True, "active": True, "created_at": stamp, "updated_at": stamp,
            "deleted_at": None, "type": "ACCOUNT_TYPE_FIAT" if fiat else "ACCOUNT_TYPE_CRYPTO",
            "ready": True, "hold": {"value": _amount(Decimal(0), places), "currency": code},
            "retail_portfolio_id": str(uuid.uuid5(_UUID_NS, f"portfolio:{account.api_key}")),
            "platform": "ACCOUNT_PLATFORM_CONSUMER",
        }

    def private_accounts(self, req: Request, account: Account) -> Response:
        """One page of wallets: min(limit, page_size) rows from ``cursor`` (a wallet uuid)."""
        try:
            limit = int(req.query.get("limit") or 49)
        except ValueError:
            return _v3_error(400, "INVALID_ARGUMENT", "invalid limit")
        size = max(1, min(limit, 250, self.page_size))
        wallets = [self._wallet(account, code, amount)
                   for code, amount in account.balances.items()]
        start = 0
        cursor = req.query.get("cursor")
        if cursor:
            start = next((i for i, w in enumerate(wallets) if w["uuid"] == cursor), -1)
            if start < 0:
                return _v3_error(400, "INVALID_ARGUMENT", "invalid cursor")
        page = wallets[start:start + size]
        has_next = start + size < len(wallets)
        return self.json_response({
            "accounts": page, "has_next": has_next,
            "cursor": wallets[start + size]["uuid"] if has_next else "", "size": len(page),
        })

    def private_transaction_summary(self, req: Request, account: Account) -> Response:
        return self.json_response({
            "total_volume": 0, "total_fees": 0,
            "fee_tier": {"pricing_tier": "Advanced 1", "usd_from": "0", "usd_to": "1000",
                         "taker_fee_rate": "0.012", "maker_fee_rate": "0.006",
                         "aop_from": "", "aop_to": ""},
            "margin_rate": None, "goods_and_services_tax": None,
            "advanced_trade_only_volume": 0, "advanced_trade_only_fees": 0,
            "coinbase_pro_volume": 0, "coinbase_pro_fees": 0, "total_balance": "",
            "has_promo_fee": False,
        })

    def private_products(self, req: Request, account: Account) -> Response:
        return self._products_response(req)
