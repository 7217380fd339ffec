"""`settle_heap()`: a serving process's start-up objects leave the cyclic collector's view.

A process that serves (``python -m web``, ``python -m bot.monitor``, ``python -m bot.worker``)
holds a few hundred thousand objects made at start-up — modules, ccxt's and Flask's classes, the
configuration, the first states — that live as long as the process. Every full collection of
the cyclic garbage collector walks all of them while holding the interpreter lock: 100–250 ms
pauses in the web process of the pages benchmark, which were its p99 latency. ``gc.freeze()``
moves every object tracked now to the permanent generation, so later collections walk only what
was made since. Only the entry points call it: the library (the manager embedded in a bot)
never changes the host process's collector.
"""
from __future__ import annotations

import gc


def settle_heap() -> int:
    """Collect once, then freeze what survives; returns how many objects are frozen now."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
