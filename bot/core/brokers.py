"""Broker names: `BrokerType` names the usual exchanges; any ccxt exchange id works as a string."""
from __future__ import annotations

from enum import Enum


class BrokerType(str, Enum):
    COINBASE = "coinbase"
    KRAKEN = "kraken"
    BINANCE = "binance"
    OKX = "okx"
    ALPACA = "alpaca"
    PAPER = "paper"


def broker_key(broker: BrokerType | str) -> str:
    """The lower-case name used to look a broker up (``BrokerType.KRAKEN`` → ``"kraken"``)."""
    return broker.value if isinstance(broker, BrokerType) else str(broker).lower()
