"""Everything that talks to an exchange: the only package that imports ccxt.

`catalog` (exchange ids, required credentials), `quirks` (per-exchange ccxt options), `limits`
(every exchange's request limits as data), `urls` (``api_url``), `loop` (the one asyncio loop all
exchange I/O runs on), `budget` (per host and egress address: pacing, pauses, bans), `signals`
(what an answer says about the limits), `lane` (per-key call discipline), `http` (one bounded
request), `endpoint` (shared ``ccxt.async_support`` instances per exchange endpoint), `clients`
(one client per account), `reader` (one read with the error policy), `report` (what the limits
allow, per exchange), `wire` (exact amounts from the response text), `errors`. Importing this
package does no work.
"""
