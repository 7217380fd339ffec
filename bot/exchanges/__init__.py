"""Everything that talks to an exchange: the only package that imports ccxt.

`catalog` (exchange ids, required credentials), `quirks` (per-exchange options and limits as
data), `urls` (``api_url``), `gate` (per-key call discipline), `endpoint` (shared ccxt instances
per exchange endpoint), `clients` (one client per account), `reader` (one read with the error
policy). Importing this package does no work.
"""
