"""One HTTP request of a ccxt async instance, bounded: a total deadline and a body cap.

`bounded_fetch` mirrors ``ccxt.async_support`` ``Exchange.fetch`` (same headers, same hooks
``on_rest_response`` / ``parse_json``, ccxt's error mapping by ``handle_errors`` and
``handle_http_status_code``) with two differences: the whole request (connect, send, headers and
every byte of the body) must finish within ``deadline`` seconds (else ``RequestTimeout``: a
server trickling bytes fails in time, which a per-read timeout does not do), and a body longer
than ``max_bytes`` (announced by Content-Length or counted while reading) is refused as
`MalformedResponse` without being read to its end. ``observe(status, headers, payload)`` sees
every answer before ccxt's error mapping (the budgets' server signals). No proxies: the product
reaches exchanges directly (``fetch.source_address`` picks the egress address).

`new_session(source_address)` makes the aiohttp session an endpoint shares (keep-alive, no
connection limit of its own: the budgets' slots bound what is in flight).
"""
from __future__ import annotations

import asyncio
import os
import socket
import ssl
from typing import Callable

import aiohttp
import certifi
import yarl
from ccxt.base.errors import ExchangeError, ExchangeNotAvailable, NetworkError, RequestTimeout

from bot.exchanges.errors import MalformedResponse

DEFAULT_MAX_RESPONSE_BYTES = 10 * 1024 * 1024
_CHUNK = 64 * 1024


def trust_store() -> ssl.SSLContext:
    """The certificates exchanges are verified against: ``$REQUESTS_CA_BUNDLE``,
    ``$CURL_CA_BUNDLE`` or ``$SSL_CERT_FILE`` when set (as the product honoured them before its
    reads moved to aiohttp), else certifi's bundle (ccxt's own default)."""
    for variable in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE"):
        path = os.environ.get(variable)
        if path:
            return ssl.create_default_context(cafile=path)
    return ssl.create_default_context(cafile=certifi.where())


def new_session(source_address: str | None = None) -> aiohttp.ClientSession:
    """A session for one endpoint, bound to ``source_address`` when given (call on the loop)."""
    connector = aiohttp.TCPConnector(limit=0, enable_cleanup_closed=True, ttl_dns_cache=300, ssl=trust_store(),
                                     local_addr=(source_address, 0) if source_address else None)
    return aiohttp.ClientSession(connector=connector, trust_env=False,
                                 timeout=aiohttp.ClientTimeout(total=None))


async def _read_capped(response: aiohttp.ClientResponse, max_bytes: int) -> bytes:
    length = response.content_length
    if length is not None and length > max_bytes:
        raise MalformedResponse(f"response body of {length} bytes is over the {max_bytes}-byte cap")
    if length is not None and "Content-Encoding" not in response.headers:
        return await response.read()  # not decompressed: the parser reads no more than the announced length
    body = bytearray()
    while True:
        chunk = await response.content.read(_CHUNK)
        if not chunk:
            return bytes(body)
        body += chunk
        if len(body) > max_bytes:
            raise MalformedResponse(f"response body over the {max_bytes}-byte cap")


async def bounded_fetch(exchange, session: aiohttp.ClientSession, url: str, method: str, headers, body,
                        deadline: float, max_bytes: int, observe: Callable[[int, object, object], None]):
    """``exchange.fetch`` for ``exchange`` over ``session`` (see the module docstring)."""
    request_headers = exchange.prepare_request_headers(headers)
    exchange.last_request_headers = request_headers
    exchange.logger.debug("%s %s, Request: %s %s", method, url, headers, body)
    data = body.encode() if isinstance(body, str) else body
    details = " ".join([exchange.id, method, url])
    try:
        async with asyncio.timeout(deadline):
            async with session.request(method, yarl.URL(url, encoded=True), data=data,
                                       headers=request_headers) as response:
                raw = await _read_capped(response, max_bytes)
                status, reason = response.status, response.reason
                raw_headers = response.headers
                encoding = response.charset or "utf-8"
    except MalformedResponse:
        raise
    except (asyncio.TimeoutError, TimeoutError) as exc:
        raise RequestTimeout(details) from exc
    except socket.gaierror as exc:
        raise ExchangeNotAvailable(details) from exc
    except (aiohttp.ClientSSLError, ssl.SSLError) as exc:  # as ccxt's synchronous client reports TLS failures
        raise NetworkError(details) from exc
    except aiohttp.ClientConnectionError as exc:
        raise ExchangeNotAvailable(details) from exc
    except aiohttp.ClientError as exc:
        raise ExchangeError(details) from exc
    try:
        text = raw.decode(encoding, errors="replace")
    except LookupError:
        text = raw.decode("utf-8", errors="replace")
    response_headers: dict[str, str] = {}
    for name, value in raw_headers.items():
        response_headers[name] = response_headers[name] + ", " + value if name in response_headers else value
    text = exchange.on_rest_response(status, reason, url, method, response_headers, text, request_headers, body)
    payload = exchange.parse_json(text)
    if exchange.enableLastHttpResponse:
        exchange.last_http_response = text
    if exchange.enableLastResponseHeaders:
        exchange.last_response_headers = response_headers
    if exchange.enableLastJsonResponse:
        exchange.last_json_response = payload
    exchange.logger.debug("%s %s, Response: %s %s %s", method, url, status, response_headers, text)
    observe(status, raw_headers, payload)
    exchange.handle_errors(status, reason, url, method, response_headers, text, payload, request_headers, body)
    exchange.handle_http_status_code(status, reason, url, method, text)
    if payload is not None:
        return payload
    return text
