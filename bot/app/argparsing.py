"""Command-line parsing for the entry points: a usage error is one line, never a usage dump."""
from __future__ import annotations

import argparse


class UsageError(Exception):
    """Bad command-line usage; the message is the one line to print."""


class OneLineParser(argparse.ArgumentParser):
    def error(self, message: str):
        raise UsageError(message)


def add_source_address(parser: argparse.ArgumentParser) -> None:
    """``--source-address ADDR``: the local address exchange connections leave from."""
    parser.add_argument("--source-address", metavar="ADDR",
                        help="bind exchange connections to this local IP address (overrides settings fetch.source_address)")


def with_source_address(config, address: str | None):
    """``config`` with ``settings.fetch.source_address`` set to ``address`` (None: unchanged).
    Raises UsageError for something that is not an IP address."""
    if address is None:
        return config
    import ipaddress
    from dataclasses import replace

    try:
        ipaddress.ip_address(address)
    except ValueError:
        raise UsageError(f"--source-address: not an IP address: {address!r}") from None
    settings = config.settings
    return replace(config, settings=replace(settings, fetch=replace(settings.fetch, source_address=address)))
