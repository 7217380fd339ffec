"""Configuration: a directory with ``settings.json``, ``master.json`` and ``users/*.json``.

`load_config(directory)` reads and validates everything once and returns an immutable `Config`
(`bot.config.model`), or raises `ConfigError` naming the file and the field. Modules:
`fields` (typed field access, ConfigError), `model` (the values), `settings`, `alerts`, `web`
(one section each), `load` (files, users, brokers, credentials).
"""
from bot.config.fields import ConfigError
from bot.config.load import config_directory, load_config
from bot.config.model import (MASTER_OWNER, AccountConfig, BrokerConfig, Config, MasterConfig, MetricsSettings,
                              RateLimit, Settings, UserConfig)

__all__ = ["MASTER_OWNER", "AccountConfig", "BrokerConfig", "Config", "ConfigError", "MasterConfig",
           "MetricsSettings", "RateLimit", "Settings", "UserConfig", "config_directory", "load_config"]
