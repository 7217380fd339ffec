"""multibalance: balances of many exchange accounts, read through ccxt, valued in one currency."""

__version__ = "0.1.0"
