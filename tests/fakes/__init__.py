"""Loopback fake exchanges (real HTTP servers on 127.0.0.1) for the test suite.

Names are resolved lazily so that importing this package never imports an exchange module
(each fake may be written independently): ``from tests.fakes import FakeKraken`` imports
``tests.fakes.kraken`` on first use. ``fake_class("kraken")`` finds the FakeExchange subclass
defined in ``tests.fakes.<exchange>`` (used by ``python -m tests.fakes``).
"""
from __future__ import annotations

import importlib

EXCHANGES = ("kraken", "binance", "okx", "coinbase")

_LAZY = {
    "FakeKraken": "kraken",
    "FakeBinance": "binance",
    "FakeOKX": "okx",
    "FakeOkx": "okx",
    "FakeCoinbase": "coinbase",
}

__all__ = ["fake_class", "EXCHANGES", "FakeKraken", "FakeBinance", "FakeOKX", "FakeCoinbase"]


def fake_class(exchange: str):
    """The FakeExchange subclass defined in ``tests.fakes.<exchange>``."""
    from .base import FakeExchange

    module = importlib.import_module(f"{__name__}.{exchange.lower()}")
    for value in vars(module).values():
        if (isinstance(value, type) and issubclass(value, FakeExchange)
                and value is not FakeExchange and value.__module__ == module.__name__):
            return value
    raise LookupError(f"no FakeExchange subclass in {module.__name__}")


def __getattr__(name: str):
    if name in ("FakeExchange", "CallRecord"):
        from . import base
        return getattr(base, name)
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(f"{__name__}.{module_name}")
    if hasattr(module, name):
        return getattr(module, name)
    return fake_class(module_name)
