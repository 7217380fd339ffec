"""Each exchange's documented rate limits, as the fakes enforce them (``fake.limit_rules``).

The numbers are attributes of the rule objects, so a test may shrink one
(``fake.limit_rules.weight_limit = 100``); ``reset_limits(defaults=True)`` restores them. Limits
are keyed by the client's address (``Request.client_ip``, the handler's ``client_address[0]``)
or by the API key, never shared between two addresses or two keys. All windows and decay rates
are exchange seconds (see ``limits.py`` for time scaling). Hooks run with the fake's lock held.

Binance spot (developers.binance.com, "LIMITS"; weights as ccxt 4.5 and the endpoint docs):
  REQUEST_WEIGHT 6,000 per clock minute per address, shared by every key and public call.
  Weights: GET /api/v3/account 20, exchangeInfo 20, ticker/24hr 2 with ``symbol`` (``symbols``:
  1-20 -> 2, 21-100 -> 40, more -> 80), 80 without; ticker/price 2 with ``symbol``, else 4;
  ping, time and anything else 1. Every response (also without enforcement) carries
  ``X-MBX-USED-WEIGHT`` and ``X-MBX-USED-WEIGHT-1M``: the address's weight in the current window,
  this request included (refused requests count too, as on Binance).
  Over 6,000: HTTP 429, ``Retry-After`` = real seconds until the window ends, body
  {"code":-1003,"msg":"Too much request weight used; current limit is 6000 request weight per 1
  MINUTE. Please use WebSocket Streams for live updates to avoid polling the API."}
  Any request from an address before its Retry-After deadline (the window end for a limit 429;
  the header value for an injected 429/418) bans it: HTTP 418, Retry-After = ban length, body
  {"code":-1003,"msg":"Way too much request weight used; IP banned until <epoch ms>. Please use
  WebSocket Streams for live updates to avoid bans."}. Ban lengths: 2 minutes, doubling with each
  ban of that address, at most 3 days. Requests during a ban get the same 418 (remaining time)
  and do not lengthen it. ccxt raises RateLimitExceeded (-1003) for both.
Kraken (docs.kraken.com "Spot REST Rate Limits"; public limit per IP as Kraken support states):
  public: 1 call per second per address (all public endpoints together) -> HTTP 200
  {"error":["EGeneral:Too many requests"]} (Kraken reports API errors with HTTP 200).
  private: a call counter per API key: +1 per call (Ledgers/QueryLedgers/TradesHistory +2),
  decaying continuously; tiers (``fake.tier`` default "starter", or per account
  ``add_account(..., tier=)`` / ``set_tier(key, tier)``): starter max 15, -0.33/s; intermediate
  max 20, -0.5/s; pro max 20, -1/s. A call that takes the counter above the max -> HTTP 200
  {"error":["EAPI:Rate limit exceeded"]} (the refused call still counts). ccxt: DDoSProtection.
OKX v5 (www.okx.com/docs-v5 per endpoint): private per user id (= API key here), each endpoint
  its own window: account/balance 10 per 2 s, asset/currencies 6 per 1 s. Public per address,
  each endpoint its own window: market/tickers, public/instruments, market/ticker 20 per 2 s,
  public/time 10 per 2 s. Over -> HTTP 429 {"code":"50011","msg":"Too Many Requests","data":[]}
  (no Retry-After, as OKX). ccxt: RateLimitExceeded.
Coinbase Advanced Trade (docs.cdp.coinbase.com "Rate Limits"): private 30 requests per second per
  key (all private endpoints together), public 10 per second per address (all public endpoints,
  the v2 ones too). Over -> HTTP 429 {"errors":[{"id":"rate_limit_exceeded","message":"Too many
  requests"}]} (no Retry-After). ccxt: RateLimitExceeded.
Windows other than Binance's are sliding (at most N accepted in any W seconds), which is at
least as strict as the exchanges' own counting.
"""
from __future__ import annotations

import json
import time

from .limits import DecayingCounter, RateWindow, Rules, WeightWindow

__all__ = ["BinanceRules", "KrakenRules", "OkxRules", "CoinbaseRules", "KRAKEN_TIERS"]

#: Kraken tier -> (max counter, decay per second)
KRAKEN_TIERS = {"starter": (15.0, 0.33), "intermediate": (20.0, 0.5), "pro": (20.0, 1.0)}


def _json(obj, status: int, headers=None):
    from .base import FakeExchange  # late: base imports this module's users
    return FakeExchange.json_response(obj, status, headers)


class BinanceRules(Rules):
    always_on = True   # weight is counted and reported even when nothing is refused
    weight_limit = 6000
    interval = 60.0
    first_ban = 120.0            # exchange seconds
    max_ban = 3 * 24 * 3600.0

    def __init__(self):
        self.weights = {"/api/v3/account": 20, "/api/v3/exchangeInfo": 20,
                        "/api/v3/ping": 1, "/api/v3/time": 1}

    def weight(self, req) -> int:
        query = req.query
        if req.path == "/api/v3/ticker/24hr":
            if "symbol" in query:
                return 2
            if "symbols" in query:
                try:
                    n = len(json.loads(query["symbols"]))
                except (ValueError, TypeError):
                    n = 1
                return 2 if n <= 20 else 40 if n <= 100 else 80
            return 80
        if req.path == "/api/v3/ticker/price":
            return 2 if "symbol" in query else 4
        return self.weights.get(req.path, 1)

    def _window(self, fake, state) -> WeightWindow:
        return fake.limits.limiter(state.limiters, "weight",
                                   lambda: WeightWindow(self.weight_limit, self.interval))

    def _ban_body(self, book, state, t: float, status: int = 418):
        remaining = state.banned_until - t
        until_ms = int((time.time() + remaining) * 1000)
        return _json({"code": -1003, "msg": f"Way too much request weight used; IP banned until "
                      f"{until_ms}. Please use WebSocket Streams for live updates to avoid bans."},
                     status, {"Retry-After": book.retry_after(remaining)})

    def ip_gate_locked(self, fake, req, kind, ip, t, enforce):
        book = fake.limits
        state = book.address(ip)
        x = t * book.time_scale
        window = self._window(fake, state)
        req.limit_note = window.current(x)      # reported by decorate_locked unless added below
        if enforce and t < state.banned_until:
            book.refuse(req, "ip_ban", 418)
            req.armed = True           # the ban's deadline is already armed
            return self._ban_body(book, state, t)
        if enforce and t < state.retry_after_until:
            seconds = min(self.first_ban * 2 ** state.ban_count, self.max_ban) / book.time_scale
            until = book.ban(ip, t, seconds)
            book.arm(ip, t, until, 418)
            book.refuse(req, "ip_ban", 418)
            req.armed = True
            return self._ban_body(book, state, t)
        used = req.limit_note = window.add(self.weight(req), x)
        if enforce and used > self.weight_limit:
            seconds = window.resets_in(x) / book.time_scale
            book.arm(ip, t, t + seconds, 429)
            book.refuse(req, "ip_weight", 429)
            req.armed = True
            return _json({"code": -1003, "msg": f"Too much request weight used; current limit is "
                          f"{self.weight_limit} request weight per 1 MINUTE. Please use WebSocket "
                          "Streams for live updates to avoid polling the API."}, 429,
                         {"Retry-After": book.retry_after(seconds)})
        return None

    def decorate_locked(self, fake, req, resp, ip, t):
        used = str(req.limit_note)              # the address's weight when the request arrived
        headers = resp.headers = dict(resp.headers or {})
        headers["X-MBX-USED-WEIGHT"] = used
        headers["X-MBX-USED-WEIGHT-1M"] = used

    def address_stats(self, state, x):
        window = state.limiters.get("weight")
        if window is None:
            return {}
        return {"used_weight": window.current(x), "peak_weight": window.peak}


class KrakenRules(Rules):
    public_limit = (1, 1.0)   # calls, seconds
    refusal_status = 200

    def __init__(self):
        self.tiers = dict(KRAKEN_TIERS)
        self.costs = {"/0/private/Ledgers": 2, "/0/private/QueryLedgers": 2,
                      "/0/private/TradesHistory": 2}

    def ip_gate_locked(self, fake, req, kind, ip, t, enforce):
        if not enforce or kind != "public":
            return None
        book = fake.limits
        state = book.address(ip)
        window = book.limiter(state.limiters, "public", lambda: RateWindow(*self.public_limit))
        if window.try_acquire(t * book.time_scale):
            return None
        book.refuse(req, "ip_rate", self.refusal_status)
        return _json({"error": ["EGeneral:Too many requests"]}, self.refusal_status)

    def key_gate_locked(self, fake, req, account, t):
        book = fake.limits
        tier = account.extra.get("tier") or fake.tier
        maximum, decay = self.tiers[tier]
        counter = book.limiter(book.key_limiters(account.api_key), "counter",
                               lambda: DecayingCounter(maximum, decay))
        counter.maximum, counter.decay = maximum, decay
        if counter.add(self.costs.get(req.path, 1), t * book.time_scale):
            return None
        book.refuse(req, "key_counter", self.refusal_status, account.api_key)
        return _json({"error": ["EAPI:Rate limit exceeded"]}, self.refusal_status)

    def key_stats(self, limiters, x):
        counter = limiters.get("counter")
        if counter is None:
            return {}
        return {"counter": round(counter.level_at(x), 6), "peak_counter": round(counter.peak, 6),
                "max_counter": counter.maximum}


class _WindowRules(Rules):
    """Sliding windows per address (public) and per key (private), keyed by ``group(path)``."""
    public_limits: dict = {}
    private_limits: dict = {}
    status = 429

    def __init__(self):
        self.public_limits = dict(type(self).public_limits)
        self.private_limits = dict(type(self).private_limits)

    def group(self, path: str, table: dict):
        return path if path in table else None

    def refusal(self):
        raise NotImplementedError

    def ip_gate_locked(self, fake, req, kind, ip, t, enforce):
        if not enforce or kind != "public":
            return None
        return self._check(fake, req, fake.limits.address(ip).limiters, self.public_limits,
                           "ip_rate", None, t)

    def key_gate_locked(self, fake, req, account, t):
        return self._check(fake, req, fake.limits.key_limiters(account.api_key),
                           self.private_limits, "key_rate", account.api_key, t)

    def _check(self, fake, req, owner, table, reason, api_key, t):
        name = self.group(req.path, table)
        if name is None:
            return None
        book = fake.limits
        window = book.limiter(owner, name, lambda: RateWindow(*table[name]))
        if window.try_acquire(t * book.time_scale):
            return None
        book.refuse(req, reason, self.status, api_key)
        return self.refusal()

    def key_stats(self, limiters, x):
        return {"peak_in_window": {name: w.peak for name, w in limiters.items()}}

    def address_stats(self, state, x):
        return self.key_stats(state.limiters, x)


class OkxRules(_WindowRules):
    public_limits = {"/api/v5/market/tickers": (20, 2.0), "/api/v5/public/instruments": (20, 2.0),
                     "/api/v5/market/ticker": (20, 2.0), "/api/v5/public/time": (10, 2.0)}
    private_limits = {"/api/v5/account/balance": (10, 2.0), "/api/v5/asset/currencies": (6, 1.0)}

    def refusal(self):
        return _json({"code": "50011", "msg": "Too Many Requests", "data": []}, 429)


class CoinbaseRules(_WindowRules):
    public_limits = {"public": (10, 1.0)}
    private_limits = {"private": (30, 1.0)}

    def group(self, path, table):
        return next(iter(table), None)     # one window for every path of the kind

    def refusal(self):
        return _json({"errors": [{"id": "rate_limit_exceeded", "message": "Too many requests"}]},
                     429)
