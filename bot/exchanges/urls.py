"""Point a ccxt exchange's REST endpoints at another scheme and host (`api_url`).

Used for testnets, proxies and the loopback fake exchanges of the test suite: every URL
under ``exchange.urls['api']`` keeps its path but takes the scheme and host of ``api_url``.
"""
from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit


def rewrite_url(url: str, api_url: str) -> str:
    """Return ``url`` with the scheme and host (netloc) of ``api_url``; path and query kept."""
    target = urlsplit(api_url)
    parts = urlsplit(url)
    return urlunsplit((target.scheme, target.netloc, parts.path, parts.query, parts.fragment))


def rewrite_api_urls(api_urls, api_url: str):
    """Rewrite every URL string in ccxt's ``urls['api']`` (a str, or nested dicts of str)."""
    if isinstance(api_urls, str):
        return rewrite_url(api_urls, api_url)
    if isinstance(api_urls, dict):
        return {name: rewrite_api_urls(value, api_url) for name, value in api_urls.items()}
    return api_urls


def point_exchange_at(exchange, api_url: str) -> None:
    """Rewrite a ccxt exchange instance's REST endpoints in place to use ``api_url``."""
    exchange.urls = dict(exchange.urls)
    exchange.urls["api"] = rewrite_api_urls(exchange.urls["api"], api_url)
