"""Public import path of the monitoring system (see `bot.alerts.system`)."""
from bot.alerts.system import AlertEvent, AlertLevel, AlertType, MonitoringSystem, get_monitoring_system

__all__ = ["AlertEvent", "AlertLevel", "AlertType", "MonitoringSystem", "get_monitoring_system"]
