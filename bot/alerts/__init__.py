"""Balance alerts: settings (`settings`), values (`model`), rules (`rules`), delivery (`delivery`).

The entry point is `bot.alerts.system` (``get_monitoring_system``); importing this package
does no work.
"""
