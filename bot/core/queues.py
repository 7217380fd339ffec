"""Draining a worker's queue in batches: block for one item, then take what else is waiting
(`next_batch`), or also what keeps arriving for a while (`gather_batch`)."""
from __future__ import annotations

import queue
import time
from typing import Callable


def next_batch(q: queue.Queue | queue.SimpleQueue, limit: int | None = None) -> list:
    """Wait for one item of ``q``, then take every further item already there (at most ``limit``
    in all), without waiting again. The caller calls ``task_done`` if ``q`` is a joinable Queue."""
    batch = [q.get()]
    while limit is None or len(batch) < limit:
        try:
            batch.append(q.get_nowait())
        except queue.Empty:
            break
    return batch


def gather_batch(q: queue.Queue, limit: int, idle_seconds: float, longest_seconds: float,
                 ends: Callable[[object], bool]) -> list:
    """`next_batch`, then more for as long as items keep arriving (each within ``idle_seconds``
    of the last), for at most ``longest_seconds`` and ``limit`` items; an item for which
    ``ends(item)`` is true (a stop or a flush) ends the batch at once. So a burst of items is one
    batch, and a lone item waits at most ``idle_seconds``. The waits are a consumer waiting for
    work (``get(timeout=...)``), never a sleep."""
    batch = next_batch(q, limit)
    deadline = time.monotonic() + longest_seconds
    ended = any(ends(entry) for entry in batch)
    while not ended and len(batch) < limit:
        wait = min(idle_seconds, deadline - time.monotonic())
        if wait <= 0:
            break
        try:
            entry = q.get(timeout=wait)
        except queue.Empty:
            break
        while True:
            batch.append(entry)
            if ends(entry):
                ended = True
                break
            if len(batch) >= limit:
                break
            try:
                entry = q.get_nowait()
            except queue.Empty:
                break
    return batch
