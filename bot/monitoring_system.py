"""Public import path of the monitoring system (see `bot.alerts.system`)."""
from __future__ import annotations

from typing import Callable

from bot.alerts import system as _system
from bot.alerts.system import AlertEvent, AlertLevel, AlertType, MonitoringSystem

__all__ = ["AlertEvent", "AlertLevel", "AlertType", "MonitoringSystem", "get_monitoring_system"]


def get_monitoring_system(manager=None, clock: Callable[[], float] | None = None) -> MonitoringSystem:
    """The monitoring system attached to ``manager`` (default: the module-level
    ``multi_account_broker_manager``), attached on first call: one per manager."""
    if manager is None:
        from bot.multi_account_broker_manager import multi_account_broker_manager as manager
    return _system.get_monitoring_system(manager, clock)
