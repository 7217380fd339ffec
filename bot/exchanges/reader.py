"""One read of one account, with the error policy: what is retried, what is reported, how.

`read_account` (a coroutine for the fetch loop) never raises. Authentication and permission
errors are not retried; the `ccxt.NetworkError` family (timeouts, 5xx, 429, DDoS protection,
invalid nonce, refused connections) is retried ``settings.retries`` times with exponential
backoff (``asyncio.sleep`` on the loop; a 429 also paused the host's budget, which the retry
waits for); anything else (malformed responses, unexpected exceptions) fails the read at once.
An account with a known value does not wait on a host paused for longer than
``request_timeout_seconds``: it stays ``stale`` with ``RateLimited: until HH:MM:SS (reason)``
(error_class ``RateLimited``); a never-read account waits (pending). A failed read keeps the
last good value (``stale``) or has none (``error``); ``error_class`` is the exception class's
name and the error text names it too; neither carries credentials or signed query strings. A
TLS failure (which ccxt reports as a plain ``NetworkError``) also names its reason:
``certificate verify failed: self-signed certificate``, ``... Hostname mismatch ...``, ``wrong
version number``.
"""
from __future__ import annotations

import asyncio
import logging
import re
import ssl
import time

import ccxt

from bot.core.state import AccountState, Status
from bot.config import AccountConfig, Settings
from bot.core.pricing import value_holdings
from bot.core.secrets import redact
from bot.exchanges.errors import MalformedResponse, RateLimited

log = logging.getLogger(__name__)

RETRYABLE = (ccxt.NetworkError,)
EXPECTED = (ccxt.BaseError, MalformedResponse, RateLimited)  # what an exchange's answer can cause: no traceback
_QUERY = re.compile(r"\?\S*")
MAX_ERROR_LENGTH = 300


def blank_state(account: AccountConfig, status: Status = Status.ERROR, error: str | None = None,
                error_class: str | None = None) -> AccountState:
    broker = account.broker
    return AccountState(account_id=account.account_id, owner=account.owner, broker=broker.name,
                        exchange=broker.exchange, status=status, error=error, error_class=error_class)


def describe_error(exc: BaseException, secrets: tuple[str, ...] = ()) -> str:
    """``Class: message`` with secrets and query strings removed, bounded in length; for a TLS
    failure ``Class: TLS <reason> (message)``."""
    name = type(exc).__name__
    message = _QUERY.sub("?…", redact(" ".join(str(exc).split()), secrets))
    tls = tls_reason(exc)
    if tls is not None:
        message = f"TLS {redact(tls, secrets)} ({message})" if message else f"TLS {redact(tls, secrets)}"
    text = f"{name}: {message}" if message else name
    return text if len(text) <= MAX_ERROR_LENGTH else text[: MAX_ERROR_LENGTH - 1] + "…"


_SSL_DECORATION = re.compile(r"^\[[A-Z0-9_]+: [A-Z0-9_]+\] |\s*\(_ssl\.c:\d+\)$")
# Where HTTP libraries keep the error they wrap: requests and urllib3 (args, reason), aiohttp
# (os_error, certificate_error), besides the standard __cause__ and __context__.
_WRAPPED = ("__cause__", "__context__", "reason", "os_error", "certificate_error")


def tls_reason(exc: BaseException) -> str | None:
    """The reason of the `ssl.SSLError` behind ``exc`` (searched through the exceptions it wraps),
    in words; None when ``exc`` is no TLS failure."""
    seen, stack, unverified = set(), [exc], None
    while stack and len(seen) < 50:
        item = stack.pop()
        if not isinstance(item, BaseException) or id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, ssl.SSLCertVerificationError):
            message = getattr(item, "verify_message", None)
            if message:
                return f"certificate verify failed: {message}"
            # aiohttp's certificate error is one too, without the message: look inside it first
            unverified = "certificate verify failed: unknown reason"
        elif isinstance(item, ssl.SSLError):
            text = _SSL_DECORATION.sub("", str(item.args[1]) if len(item.args) > 1 else str(item)).strip()
            reason = (getattr(item, "reason", None) or "").replace("_", " ").lower()
            return text or reason or type(item).__name__
        stack.extend(getattr(item, attr, None) for attr in _WRAPPED)
        stack.extend(arg for arg in item.args if isinstance(arg, BaseException))
    return unverified


async def read_account(account: AccountConfig, client, previous: AccountState | None,
                       settings: Settings, started: float | None = None, max_wait: float | None = -1.0) -> AccountState:
    """Read and value one account; return its new state (see the module docstring). A
    successful state's ``read_seconds`` counts from ``started`` (``time.perf_counter()``).
    ``max_wait`` (seconds) overrides how long the read may wait on a paused host."""
    attempts = settings.retries + 1
    error, error_class = "unknown error", None
    if max_wait is not None and max_wait < 0:
        known = previous is not None and previous.value is not None
        max_wait = settings.request_timeout_seconds if known else None
    for attempt in range(attempts):
        try:
            amounts, price_of = await client.read(max_wait)
            holdings, total, unpriced = value_holdings(amounts, price_of)
        except RateLimited as exc:
            error, error_class = describe_error(exc), type(exc).__name__
            break
        except RETRYABLE as exc:
            error, error_class = describe_error(exc, client.secret_values()), type(exc).__name__
            if attempt + 1 < attempts:
                log.info("%s: %s; retry %d of %d", account.account_id, error, attempt + 1, settings.retries)
                await asyncio.sleep(settings.retry_backoff_seconds * (2 ** attempt))
            continue
        except Exception as exc:  # the account boundary: nothing escapes to other accounts
            error, error_class = describe_error(exc, client.secret_values()), type(exc).__name__
            if not isinstance(exc, EXPECTED):  # a bug, ours or ccxt's: keep the traceback
                log.error("%s: unexpected error in a read: %s", account.account_id, error, exc_info=True)
            break
        return AccountState(account_id=account.account_id, owner=account.owner, broker=account.broker.name,
                            exchange=account.broker.exchange, status=Status.OK, value=total,
                            holdings=holdings, unpriced=unpriced, fetched_at=time.time(),
                            read_seconds=None if started is None else time.perf_counter() - started)
    log.warning("%s: read failed: %s", account.account_id, error)
    return (previous or blank_state(account)).failed(error, error_class)
