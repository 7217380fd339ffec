"""Shared machinery of the loopback fake exchanges (see /tmp/spec/fakes.md for the contract).

A fake is a real HTTP/1.1 server on 127.0.0.1 (``ThreadingHTTPServer``, daemon threads,
keep-alive with exact Content-Length) that speaks one exchange's wire format. This module owns
everything that is the same for every exchange:

* the server, quiet logging, ``start()`` / ``stop()`` / context manager, ``url``;
* per-request ``latency`` (waited server side on an Event, per request, without the lock) and
  the ``timeout`` fault delay (``timeout_delay`` seconds, interrupted by ``stop()``);
* accounts (``add_account``, ``set_balance``, ``auto_accounts``), prices (``set_price``);
* per-key bookkeeping: overlap (requests of one key in flight together), spacing (arrivals of one
  key closer than ``min_interval``), nonce (strictly increasing, or non-decreasing for
  timestamp-signing exchanges), public spacing (``public_min_interval``, counted only);
* fault injection (``inject``), ``violations``, ``calls`` (``CallRecord``), ``private_calls()``,
  ``reset_counters()``; the ``GET /__fake__/stats`` and ``POST /__fake__/reset`` endpoints.

Locking: ALL shared mutable state (accounts and their balances/nonces/bookkeeping, prices,
violations, call records, injected faults) is guarded by the single ``self.lock``. Every
per-request operation under it is O(1) (dict lookups, list appends); latency and fault delays
are waited with the lock released. Account credentials are immutable once created, so signature
checks (CPU bound HMAC) run outside the lock.

Subclass interface (what an exchange module implements)
-------------------------------------------------------
Class attributes:
  ``name``                 exchange id, e.g. "kraken" (used by the CLI).
  ``public_routes``        {path: handler-method-name} for public endpoints (any HTTP method).
  ``private_routes``       {path: handler-method-name} for private endpoints.
                           Override ``route(req)`` instead when paths are not a fixed set.
  ``default_prices``       {"BTC/USD": "50000", ...} unified symbol -> last price (the market list).
  ``auto_balances``        balances of an auto-account, {"USD": "100", "BTC": "0.01"} by default.
  ``nonce_strict``         True: a nonce must be > the key's previous one (Kraken). False: only a
                           nonce < previous is a violation (timestamp-signing exchanges).
Methods:
  ``new_credentials() -> (api_key, secret, passphrase|None)``   fresh random, real formats.
  ``derive_credentials(api_key) -> (secret, passphrase|None) | None``  for auto_accounts (call your
                           module's ``derive_secret``/``derive_passphrase``); None = not derivable.
  ``extract_key(req) -> str|None``        the API key of a private request (header/param).
  ``verify_signature(req, account) -> bool``  recompute exactly as the exchange does.
  ``extract_nonce(req) -> int|None``      the nonce/timestamp the request carries (None: none).
  ``check_request(req, account, nonce) -> Response|None``  optional extra check run under the lock
                           after signature and nonce (e.g. recvWindow); may call
                           ``self.count_violation(name)``. Default: None (accept).
  ``error_response(kind, req) -> Response``   the exchange's real error for ``kind`` in
                           ERROR_KINDS (base has generic defaults for http_5xx/429/malformed/404).
  handlers: public ``handler(req) -> Response``; private ``handler(req, account) -> Response``.
           Handlers run WITH ``self.lock`` held (so they may read ``account.balances`` and
           ``self.prices`` directly): keep them quick, never block in them.
Helpers for subclasses: ``json_response(obj, status=200, headers=None)``, ``fmt_decimal(value,
places)``, ``Request`` (method, path, query, raw_query, target, headers, body, form(), json()),
``_enqueue_fault(fault, api_key, count)`` (``inject`` without the FAULTS check, for extra faults).

Private request pipeline (base, in this order)
----------------------------------------------
1. ``route`` -> private; ``extract_key``; under the lock: the account (auto-created in auto mode
   when ``derive_credentials`` gives one), overlap check (+1 in flight), spacing check against the
   key's previous ARRIVAL (the arrival is recorded even if it breaches), pop an injected fault.
2. no account -> ``error_response("unknown_key")``, counted as a ``signature`` violation.
   injected fault other than "timeout" -> ``error_response(fault)`` (no signature/nonce check,
   the nonce is not consumed, nothing counted).
3. otherwise ``verify_signature`` (outside the lock); under the lock: bad signature ->
   "signature"; nonce breach -> "invalid_nonce" (nonce counted); ``check_request``; spacing
   breach -> "rate_limit" (already counted in 1.); else the handler.
4. wait ``latency``; an injected "timeout" then waits ``timeout_delay`` more before answering
   (that extra hold is not "in flight" for the overlap rule unless ``timeout_hold_in_flight``).
5. under the lock: -1 in flight, append the CallRecord; then the response is written in one send.
Public requests: public_spacing check (counted, not rejected), handler, latency, CallRecord.
Unknown paths: 404 from ``error_response("not_found")``, nothing recorded.

Exchange rate limits (``limits.py`` = contract and budget primitives, ``limit_book.py`` = state
and API, ``exchange_limits.py`` = each exchange's rules and error bodies)
------------------------------------------------------------------------------------------------
Constructor arguments (also attributes, changeable at run time):
  ``enforce_limits=False``  True: refuse what the real exchange refuses, keyed by the client's
                            address (``Request.client_ip`` = ``client_address[0]``; bind clients
                            to 127.0.0.2, 127.0.0.3 ... for separate budgets) or by API key:
                            Binance 6,000 weight per clock minute per address (429 + Retry-After,
                            then 418 bans of 2 min doubling to 3 days for a client that does not
                            wait); Kraken 1 public call/s per address and the per-key call counter
                            by tier (``FakeKraken(tier="starter"|"intermediate"|"pro")``, or per
                            account); OKX balance 10/2 s per key, tickers/instruments 20/2 s per
                            address; Coinbase 30/s per key, 10/s per address. Off: nothing is
                            refused (Binance still counts weight and sends X-MBX-USED-WEIGHT-1M).
  ``time_scale=1.0``        N: exchange time runs N times faster (a Binance minute is 60/N real
                            seconds; decay, windows, Retry-After and bans likewise). Headers and
                            bodies give REAL seconds/instants, i.e. what the client must wait.
  ``clock=None``            the limits' seconds source (default ``time.time``); pass
                            ``limits.ManualClock()`` to move time by hand in tests.
Attributes: ``limit_rules`` (the tables), ``fractional_retry_after``, ``keep_ip_log``.
Reading: ``limit_stats()`` (``GET /__fake__/limits``), ``throttled`` (429s sent), ``banned``
(418s), ``rejected`` (other refusals), ``refused`` (all), ``requests_during_retry_after``,
``ip_log(ip)``, ``retry_afters(ip)``; ``reset_limits(defaults=False)``
(``POST /__fake__/reset-limits``); ``reset_counters()`` also zeroes the limit counters and logs.
Pipeline: the address gate runs after routing and before step 1 (a refused request touches no
key bookkeeping and is not in ``calls``); per-key limits run in step 3 after ``check_request`` and
the spacing rule (the call is in ``calls``, like a spacing breach). ``/__fake__/*`` is never
limited.

Transport faults (``transport.py``): ``inject("trickle"|"hang"|"huge_body", api_key)`` (private)
or ``inject_public(fault, count)`` (public; any fault of FAULTS): ``trickle_interval`` (0.1 s per
body byte), ``huge_body_size`` (20 MiB); outcomes in ``transport_events``. Faults can also be
injected over HTTP: ``POST /__fake__/inject?fault=F[&api_key=K][&count=N][&public=1]``.
"""
from __future__ import annotations

import dataclasses
import json
import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, NamedTuple, Optional
from urllib.parse import parse_qs, parse_qsl

from .limit_book import LimitBook, LimitsMixin
from .transport import TRANSPORT_FAULTS, write_transport

__all__ = [
    "CallRecord", "Account", "Request", "Response", "FakeExchange", "FAULTS", "ERROR_KINDS",
    "VIOLATION_NAMES", "fmt_decimal", "to_decimal",
]

#: faults accepted by ``inject``
FAULTS = ("timeout", "http_500", "http_502", "http_429", "malformed_json", "invalid_key",
          "invalid_nonce") + TRANSPORT_FAULTS
#: faults that let the request through its checks and handler (they change how it is answered)
PASS_THROUGH_FAULTS = ("timeout",) + TRANSPORT_FAULTS
#: kinds passed to ``error_response``: the injectable faults (minus timeout) plus the rule breaches
ERROR_KINDS = ("http_500", "http_502", "http_429", "malformed_json", "invalid_key",
               "invalid_nonce", "signature", "unknown_key", "rate_limit", "not_found")
VIOLATION_NAMES = ("nonce", "spacing", "overlap", "signature", "public_spacing")


class CallRecord(NamedTuple):
    """One routed request: ``kind`` "public"|"private", server-side ``time.monotonic()`` times."""
    kind: str
    path: str
    api_key: Optional[str]
    start: float
    end: float


@dataclass(eq=False)
class Account:
    """One account. Credentials are immutable; the rest is guarded by the fake's lock.

    ``balances`` maps unified asset codes ("BTC") to Decimal. ``extra`` is free for subclasses
    (e.g. a decoded secret cached at creation by ``prepare_account``)."""
    api_key: str
    secret: str
    passphrase: Optional[str]
    balances: dict = field(default_factory=dict)
    last_nonce: Optional[int] = None
    last_arrival: Optional[float] = None
    in_flight: int = 0
    extra: dict = field(default_factory=dict)


@dataclass
class Response:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: Optional[dict] = None
    #: None: one send. "trickle" | "hang" | "huge_body": written by ``transport.write_transport``
    transport: Optional[str] = None


class Request:
    """A received request. ``target`` is the raw request-target (path + '?' + query as sent),
    ``path`` the part before '?', ``raw_query`` the part after it (undecoded), ``query`` a dict of
    first values, ``headers`` an ``email.message.Message`` (case-insensitive ``get``),
    ``client_ip`` the client's address; ``refused_by`` / ``armed`` / ``limit_note`` are the
    limits' notes (see limit_book.py)."""
    __slots__ = ("method", "target", "path", "raw_query", "query", "headers", "body", "_form",
                 "_json", "client_ip", "refused_by", "armed", "limit_note")

    def __init__(self, method: str, target: str, headers, body: bytes,
                 client_ip: str = "127.0.0.1"):
        self.client_ip = client_ip
        self.refused_by = None
        self.armed = False
        self.limit_note = None
        self.method = method
        self.target = target
        path, sep, raw_query = target.partition("?")
        self.path = path
        self.raw_query = raw_query
        self.query = dict(parse_qsl(raw_query, keep_blank_values=True)) if raw_query else {}
        self.headers = headers
        self.body = body
        self._form = None
        self._json = None

    def form(self) -> dict:
        """The body parsed as application/x-www-form-urlencoded (first values)."""
        if self._form is None:
            self._form = {k: v[0] for k, v in parse_qs(self.body.decode("utf-8", "replace"),
                                                        keep_blank_values=True).items()}
        return self._form

    def json(self) -> Any:
        """The body parsed as JSON (None if empty or not JSON)."""
        if self._json is None and self.body:
            try:
                self._json = json.loads(self.body)
            except ValueError:
                self._json = None
        return self._json


def to_decimal(value) -> Decimal:
    """Decimal from str/int/Decimal (floats go through str to keep their printed value)."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        value = repr(value)
    return Decimal(str(value))


def fmt_decimal(value: Decimal, places: int) -> str:
    """Render with exactly ``places`` decimals (e.g. 0.5, 10 -> "0.5000000000")."""
    return format(to_decimal(value).quantize(Decimal(1).scaleb(-places)), "f")


def _json_bytes(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode("utf-8")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def handle_error(self, request, client_address):  # quiet: clients time out / hang up on us
        pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server_version = "fake"
    sys_version = ""

    def log_message(self, format, *args):  # quiet logging
        pass

    def _serve(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        req = Request(self.command, self.path, self.headers, body, self.client_address[0])
        resp = self.server.fake._dispatch(req)
        if resp.transport is not None:
            return write_transport(self, self.server.fake, req, resp)
        head = ("HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n"
                % (resp.status, self.responses.get(resp.status, ("",))[0], resp.content_type,
                   len(resp.body)))
        if resp.headers:
            head += "".join("%s: %s\r\n" % kv for kv in resp.headers.items())
        if self.close_connection:
            head += "Connection: close\r\n"
        # one write: status line, headers and body leave in a single segment
        self.wfile.write(head.encode("latin-1") + b"\r\n" + resp.body)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve


class FakeExchange(LimitsMixin):
    """Base class of every fake; see the module docstring for the subclass interface."""

    name = "base"
    public_routes: dict = {}
    private_routes: dict = {}
    default_prices: dict = {}
    auto_balances: dict = {"USD": "100", "BTC": "0.01"}
    nonce_strict = True
    #: faults a subclass accepts on top of FAULTS
    extra_faults: tuple = ()
    #: the ``exchange_limits.Rules`` subclass of the exchange (None: no limits)
    limit_rules_class = None

    def __init__(self, latency: float = 0.0, min_interval: float = 0.0,
                 public_min_interval: float = 0.0, auto_accounts: bool = False,
                 host: str = "127.0.0.1", port: int = 0, enforce_limits: bool = False,
                 time_scale: float = 1.0, clock: Optional[Callable[[], float]] = None):
        self.latency = float(latency)
        self.min_interval = float(min_interval)
        self.public_min_interval = float(public_min_interval)
        self.auto_accounts = bool(auto_accounts)
        self.timeout_delay = 3.0
        #: False (default): the extra hold of an injected "timeout" does not count as "in flight"
        #: for the overlap rule (the client has given up on it; its retry is no overlap).
        #: True: the request stays in flight until its (late) response is written.
        self.timeout_hold_in_flight = False
        self.host = host
        self.port = int(port)
        self.lock = threading.Lock()
        self.accounts: dict[str, Account] = {}
        self.prices: dict[str, Decimal] = {s: to_decimal(p) for s, p in self.default_prices.items()}
        self._violations = dict.fromkeys(VIOLATION_NAMES, 0)
        self._calls: list[CallRecord] = []
        self._n_private = 0
        self._n_public = 0
        self._last_public_arrival: Optional[float] = None
        self._faults_by_key: dict[str, list] = {}
        self._faults_any: list = []
        self._faults_public: list = []
        self.trickle_interval = 0.1
        self.huge_body_size = 20 * 1024 * 1024
        self._transport_events: list = []
        self.enforce_limits = bool(enforce_limits)
        self.limits = LimitBook(time_scale, clock)
        self.limit_rules = self.new_limit_rules()
        self._stopping = threading.Event()
        self._server: Optional[_Server] = None
        self._thread: Optional[threading.Thread] = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> "FakeExchange":
        """Bind ``host:port`` (port 0: ephemeral) and serve in a daemon thread. Returns self."""
        if self._server is not None:
            return self
        self._stopping.clear()
        server = _Server((self.host, self.port), _Handler)
        server.fake = self
        self._server = server
        self.port = server.server_address[1]
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02},
                                        name=f"fake-{self.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close the socket and release any waiting (latency/timeout) requests."""
        server, self._server = self._server, None
        self._stopping.set()
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # ------------------------------------------------------------------ accounts / prices
    def add_account(self, balances: Optional[dict] = None) -> dict:
        """Create an account with fresh random credentials; ``balances`` uses unified codes.
        Returns {"api_key", "api_secret", "passphrase"}."""
        api_key, secret, passphrase = self.new_credentials()
        acct = self._make_account(api_key, secret, passphrase, balances or {})
        with self.lock:
            self.accounts[api_key] = acct
        return {"api_key": api_key, "api_secret": secret, "passphrase": passphrase}

    def set_balance(self, api_key: str, code: str, amount) -> None:
        """Set one holding (unified code). "0" keeps a zero row. Auto-accounts are created."""
        with self.lock:
            acct = self._get_account_locked(api_key)
            if acct is None:
                raise KeyError(f"unknown api key {api_key[:6]}...")
            acct.balances[code.upper()] = to_decimal(amount)

    def remove_balance(self, api_key: str, code: str) -> None:
        """Remove a holding row entirely (no zero row)."""
        with self.lock:
            acct = self._get_account_locked(api_key)
            if acct is not None:
                acct.balances.pop(code.upper(), None)

    def set_price(self, symbol: str, price) -> None:
        """Set the last price of a unified market "BASE/QUOTE"; adds the market if missing."""
        with self.lock:
            self.prices[symbol.upper()] = to_decimal(price)

    def _make_account(self, api_key, secret, passphrase, balances) -> Account:
        acct = Account(api_key, secret, passphrase,
                       {c.upper(): to_decimal(v) for c, v in balances.items()})
        self.prepare_account(acct)
        return acct

    def _get_account_locked(self, api_key: Optional[str]) -> Optional[Account]:
        """The account of ``api_key``; in auto mode a derivable key gets one. Lock held."""
        if api_key is None:
            return None
        acct = self.accounts.get(api_key)
        if acct is None and self.auto_accounts:
            derived = self.derive_credentials(api_key)
            if derived is not None:
                acct = self._make_account(api_key, derived[0], derived[1], self.auto_balances)
                self.accounts[api_key] = acct
        return acct

    # ------------------------------------------------------------------ faults / counters
    def inject(self, fault: str, api_key: Optional[str] = None, count: int = 1) -> None:
        """Make the next ``count`` private calls (of ``api_key``, or of anyone) fail with
        ``fault`` (one of FAULTS). Key-specific faults are consumed before global ones."""
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; expected one of {FAULTS}")
        self._enqueue_fault(fault, api_key, count)

    def _enqueue_fault(self, fault: str, api_key: Optional[str], count: int) -> None:
        """Queue ``fault`` for the next ``count`` private calls (of ``api_key``, or of anyone),
        unchecked: for a subclass's ``inject`` that accepts faults of its own besides FAULTS
        (they reach its ``error_response`` like the others)."""
        with self.lock:
            queue = self._faults_any if api_key is None else self._faults_by_key.setdefault(api_key, [])
            queue.extend([fault] * int(count))

    def inject_public(self, fault: str, count: int = 1) -> None:
        """Make the next ``count`` public calls fail with ``fault`` (FAULTS or ``extra_faults``)."""
        if fault not in FAULTS + tuple(self.extra_faults):
            raise ValueError(f"unknown fault {fault!r}")
        with self.lock:
            self._faults_public.extend([fault] * int(count))

    def clear_faults(self) -> None:
        with self.lock:
            self._faults_any.clear()
            self._faults_by_key.clear()
            self._faults_public.clear()

    @property
    def transport_events(self) -> list:
        with self.lock:
            return list(self._transport_events)

    def _pop_fault_locked(self, api_key) -> Optional[str]:
        queue = self._faults_by_key.get(api_key) if api_key is not None else None
        if queue:
            fault = queue.pop(0)
            if not queue:
                del self._faults_by_key[api_key]
            return fault
        if self._faults_any:
            return self._faults_any.pop(0)
        return None

    def count_violation(self, name: str) -> None:
        """Increment a violation counter. Call with ``self.lock`` held."""
        self._violations[name] = self._violations.get(name, 0) + 1

    @property
    def violations(self) -> dict:
        with self.lock:
            return dict(self._violations)

    @property
    def calls(self) -> list:
        with self.lock:
            return list(self._calls)

    def private_calls(self, api_key: Optional[str] = None) -> list:
        with self.lock:
            return [c for c in self._calls
                    if c.kind == "private" and (api_key is None or c.api_key == api_key)]

    def stats(self) -> dict:
        with self.lock:
            return {"violations": dict(self._violations), "private_calls": self._n_private,
                    "public_calls": self._n_public}

    def reset_counters(self) -> None:
        """Zero the violations and forget call records, transport events and the limits' counters
        and logs (nonces, balances, limit budgets and bans are kept: see ``reset_limits``)."""
        with self.lock:
            self._violations = dict.fromkeys(VIOLATION_NAMES, 0)
            self._calls = []
            self._n_private = 0
            self._n_public = 0
            self._transport_events = []
            self.limits.reset_counters()

    # ------------------------------------------------------------------ subclass hooks
    def new_credentials(self) -> tuple:
        raise NotImplementedError

    def derive_credentials(self, api_key: str):
        return None

    def prepare_account(self, account: Account) -> None:
        """Called once when an account is created (e.g. cache a decoded secret in ``extra``)."""

    def route(self, req: Request):
        """Return ("public"|"private", handler) or None (-> 404, counted nowhere)."""
        name = self.public_routes.get(req.path)
        if name is not None:
            return "public", getattr(self, name)
        name = self.private_routes.get(req.path)
        if name is not None:
            return "private", getattr(self, name)
        return None

    def extract_key(self, req: Request) -> Optional[str]:
        raise NotImplementedError

    def verify_signature(self, req: Request, account: Account) -> bool:
        raise NotImplementedError

    def extract_nonce(self, req: Request) -> Optional[int]:
        return None

    def check_request(self, req: Request, account: Account, nonce) -> Optional[Response]:
        return None

    def error_response(self, kind: str, req: Request) -> Response:
        """Generic defaults; subclasses override for their real bodies and call super()."""
        if kind == "http_500":
            return Response(500, b"Internal Server Error", "text/plain")
        if kind == "http_502":
            return Response(502, b"<html><body><h1>502 Bad Gateway</h1></body></html>", "text/html")
        if kind in ("http_429", "rate_limit"):
            return Response(429, b"Too Many Requests", "text/plain")
        if kind == "malformed_json":
            return Response(200, b'{"error":[],"result":{"truncated', "application/json")
        if kind == "not_found":
            return Response(404, b"Not Found", "text/plain")
        return Response(401, b"Unauthorized", "text/plain")

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def json_response(obj, status: int = 200, headers: Optional[dict] = None) -> Response:
        return Response(status, _json_bytes(obj), "application/json", headers)

    def _wait(self, seconds: float) -> None:
        if seconds > 0:
            self._stopping.wait(seconds)

    # ------------------------------------------------------------------ request path
    def _dispatch(self, req: Request) -> Response:
        if req.path.startswith("/__fake__/"):
            return self._control(req)
        routed = self.route(req)
        if routed is None:
            return self.error_response("not_found", req)
        kind, handler = routed
        return self.limits.dispatch(self, req, kind, handler)

    def _routed(self, req: Request, kind: str, handler: Callable) -> Response:
        if kind == "public":
            return self._public(req, handler)
        return self._private(req, handler)

    def _control(self, req: Request) -> Response:
        if req.path == "/__fake__/stats" and req.method == "GET":
            return self.json_response(self.stats())
        if req.path == "/__fake__/reset" and req.method == "POST":
            self.reset_counters()
            return self.json_response({"ok": True})
        if req.path == "/__fake__/limits" and req.method == "GET":
            return self.json_response(self.limit_stats())
        if req.path == "/__fake__/reset-limits" and req.method == "POST":
            self.reset_limits()
            return self.json_response({"ok": True})
        if req.path == "/__fake__/inject" and req.method == "POST":
            q = req.query
            try:
                if q.get("public") in ("1", "true"):
                    self.inject_public(q.get("fault", ""), int(q.get("count", 1)))
                else:
                    self.inject(q.get("fault", ""), q.get("api_key") or None,
                                int(q.get("count", 1)))
            except ValueError as exc:
                return self.json_response({"error": str(exc)}, 400)
            return self.json_response({"ok": True})
        return Response(404, b'{"error":"not found"}')

    def _public(self, req: Request, handler: Callable) -> Response:
        start = time.monotonic()
        with self.lock:
            self._n_public += 1
            last = self._last_public_arrival
            self._last_public_arrival = start
            if (self.public_min_interval > 0 and last is not None
                    and start - last < self.public_min_interval):
                self._violations["public_spacing"] += 1
            fault = self._faults_public.pop(0) if self._faults_public else None
            resp = handler(req) if fault is None or fault in PASS_THROUGH_FAULTS else None
        if resp is None:
            resp = self.error_response(fault, req)
        self._wait(self.latency)
        if fault == "timeout":
            self._wait(self.timeout_delay)
        elif fault in TRANSPORT_FAULTS:
            resp = dataclasses.replace(resp, transport=fault)
        with self.lock:
            self._calls.append(CallRecord("public", req.path, None, start, time.monotonic()))
        return resp

    def _private(self, req: Request, handler: Callable) -> Response:
        start = time.monotonic()
        api_key = self.extract_key(req)
        with self.lock:
            self._n_private += 1
            acct = self._get_account_locked(api_key)
            fault = None
            if acct is not None:
                # arrival bookkeeping: overlap and spacing are properties of the client
                if acct.in_flight > 0:
                    self._violations["overlap"] += 1
                acct.in_flight += 1
                spaced_ok = (self.min_interval <= 0 or acct.last_arrival is None
                             or start - acct.last_arrival >= self.min_interval)
                if not spaced_ok:
                    self._violations["spacing"] += 1
                acct.last_arrival = start
                fault = self._pop_fault_locked(api_key)
        released = acct is None
        try:
            if acct is None:
                with self.lock:
                    self._violations["signature"] += 1
                resp = self.error_response("unknown_key", req)
            elif fault is not None and fault not in PASS_THROUGH_FAULTS:
                resp = self.error_response(fault, req)
            else:
                sig_ok = self.verify_signature(req, acct)  # immutable creds: no lock needed
                nonce = self.extract_nonce(req) if sig_ok else None
                with self.lock:
                    resp = self._private_checked_locked(req, acct, handler, sig_ok, nonce,
                                                        spaced_ok)
            self._wait(self.latency)
            if fault == "timeout":
                if not self.timeout_hold_in_flight:
                    with self.lock:
                        acct.in_flight -= 1
                    released = True
                self._wait(self.timeout_delay)
            elif fault in TRANSPORT_FAULTS:
                resp = dataclasses.replace(resp, transport=fault)
        finally:
            with self.lock:
                if not released:
                    acct.in_flight -= 1
                self._calls.append(CallRecord("private", req.path, api_key, start,
                                              time.monotonic()))
        return resp

    def _private_checked_locked(self, req, acct, handler, sig_ok, nonce, spaced_ok) -> Response:
        if not sig_ok:
            self._violations["signature"] += 1
            return self.error_response("signature", req)
        if nonce is not None or self.nonce_strict:
            last = acct.last_nonce
            bad = (nonce is None or (last is not None and
                                     (nonce <= last if self.nonce_strict else nonce < last)))
            if bad:
                self._violations["nonce"] += 1
                return self.error_response("invalid_nonce", req)
            acct.last_nonce = nonce
        extra = self.check_request(req, acct, nonce)
        if extra is not None:
            return extra
        if not spaced_ok:
            return self.error_response("rate_limit", req)
        if self.enforce_limits:
            refused = self.limit_rules.key_gate_locked(self, req, acct, self.limits.clock())
            if refused is not None:
                return refused
        return handler(req, acct)


# BASE READY
