"""Credentials that cannot leak by accident.

`Secret` wraps a credential string: ``str``, ``repr`` and ``format`` all give ``***``; only
``reveal()`` returns the value, and only the code that signs requests calls it. `redact` removes
known secret values from text (exception messages) before it is stored or shown. `redact_url`
shows a URL as scheme and host only (webhook and Alertmanager URLs carry tokens in their paths).
`install_log_redaction` keeps URL paths and queries out of urllib3's debug log lines; every entry
point calls it (it is idempotent), and so do the modules that make HTTP sessions.
"""
from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass

MASK = "***"


class Secret:
    """A credential value that never prints itself."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        if not isinstance(value, str) or not value:
            raise ValueError("a secret must be a non-empty string")
        self._value = value

    def reveal(self) -> str:
        return self._value

    def fingerprint(self) -> str:
        """A short, non-reversible identifier (to key per-credential state without the value)."""
        return hashlib.sha256(self._value.encode()).hexdigest()[:16]

    def __repr__(self) -> str:
        return f"Secret({MASK!r})"

    def __str__(self) -> str:
        return MASK

    def __format__(self, spec: str) -> str:
        return MASK

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self):
        raise TypeError("secrets are not picklable")


@dataclass(frozen=True, repr=False)
class Credentials:
    """One account's API credentials; ``passphrase`` only for exchanges that need one."""

    api_key: Secret
    api_secret: Secret
    passphrase: Secret | None = None

    def values(self) -> tuple[str, ...]:
        items = (self.api_key, self.api_secret, self.passphrase)
        return tuple(s.reveal() for s in items if s is not None)

    def __repr__(self) -> str:
        return f"Credentials(api_key={MASK}, api_secret={MASK})"


def redact(text: str, secrets: tuple[str, ...]) -> str:
    """Replace every occurrence of each secret value in ``text`` with ``***``."""
    for value in secrets:
        if value and len(value) >= 4:
            text = text.replace(value, MASK)
    return text


class WithholdRequestDetails(logging.Filter):
    """For ccxt's debug log: keep method and URL (without its query string), withhold request
    headers and bodies (they carry API keys, passphrases and signatures)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        if len(args) >= 2 and isinstance(args[1], str):
            method, url = args[0], args[1].split("?", 1)[0]
            record.msg, record.args = "%s %s (request and response details withheld)", (method, url)
        elif "Request" in str(record.msg) or "Response" in str(record.msg):
            record.msg, record.args = "ccxt request (details withheld)", ()
        return True


def ccxt_logger() -> logging.Logger:
    """The logger handed to every ccxt instance; it never records credentials (nor does urllib3
    below it record signed query strings: see `install_log_redaction`)."""
    install_log_redaction()
    logger = logging.getLogger("bot.ccxt")
    if not any(isinstance(f, WithholdRequestDetails) for f in logger.filters):
        logger.addFilter(WithholdRequestDetails())
    return logger


def redact_url(url: str) -> str:
    """Scheme and host (with port) of ``url``, the rest withheld: ``https://hooks.slack.com/…``.

    A user name and password are dropped too (even one with a ``/`` in it); text that is not
    ``scheme://...``, or whose host is not a plain host name or address, is withheld whole.
    """
    scheme, separator, rest = str(url).partition("://")
    if not separator or not scheme.isalnum():
        return "…"
    host = re.split(r"[/?#\\]", rest.rsplit("@", 1)[-1], maxsplit=1)[0]
    return f"{scheme}://{host if _PLAIN_HOST.fullmatch(host) else '…'}/…"


_PLAIN_HOST = re.compile(r"(?:[A-Za-z0-9._-]*|\[[0-9A-Fa-f:.]+\])(?::[0-9]{0,5})?")


# A URL, its user part, path and query to be withheld; a path logged on its own ("/hook/token").
_URL = re.compile(r"\b([A-Za-z][A-Za-z0-9+.-]*)://(?:[^\s/?#@'\"]*@)?([^\s/?#'\"]*)[^\s'\"]*")
URLLIB3_LOGGERS = ("urllib3.connectionpool", "urllib3.poolmanager", "urllib3.util.retry")


def withhold_url_paths(text: str) -> str:
    """``text`` with every URL cut to scheme and host (``https://host/…``)."""
    return _URL.sub(r"\1://\2/…", text)


class WithholdUrlPaths(logging.Filter):
    """For urllib3's loggers: URL paths, queries and user parts withheld from the message. At
    DEBUG urllib3 logs each request's path as an argument of its own (the request line, retries,
    redirects), and a webhook's path is its token."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        args = tuple("/…" if isinstance(a, str) and a.startswith("/") else a for a in args)
        try:
            message = str(record.msg) % args if args else str(record.msg)
        except Exception:  # a record that cannot be formatted is not shown with its arguments
            message = str(record.msg)
        record.msg, record.args = withhold_url_paths(message), ()
        return True


def install_log_redaction() -> None:
    """Put `WithholdUrlPaths` on urllib3's loggers (once; safe to call from every entry point)."""
    for name in URLLIB3_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, WithholdUrlPaths) for f in logger.filters):
            logger.addFilter(WithholdUrlPaths())
