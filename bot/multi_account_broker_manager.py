"""Public import path of the manager (see `bot.app.manager`); importing it does no I/O."""
from bot.app.manager import MultiAccountBrokerManager, multi_account_broker_manager

__all__ = ["MultiAccountBrokerManager", "multi_account_broker_manager"]
