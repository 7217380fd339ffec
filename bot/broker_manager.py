"""Public import path of `BrokerType` (see `bot.core.brokers`)."""
from bot.core.brokers import BrokerType, broker_key

__all__ = ["BrokerType", "broker_key"]
