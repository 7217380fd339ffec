"""Draining a worker's queue in batches: block for one item, then take what else is waiting
(`next_batch`), or also what keeps arriving for a while (`gather_batch`)."""
from __future__ import annotations

import queue
import threading
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
                 ends: Callable[[object], bool], cut: threading.Event) -> list:
    """`next_batch`, then more for as long as items keep arriving (some within each
    ``idle_seconds`` window), for at most ``longest_seconds`` and ``limit`` items; an item for
    which ``ends(item)`` is true (a stop or a flush) ends the batch. So a burst of items is one
    batch, and a lone item waits at most ``idle_seconds``.

    Between windows the consumer waits on ``cut`` (set by whoever queues a stop or a flush,
    after queueing it), not on the queue: a queue wait would wake it for every item (thousands a
    second in a round, each taking the interpreter lock from the fetch loop). The caller clears
    ``cut`` before it gathers the next batch."""
    batch = next_batch(q, limit)
    deadline = time.monotonic() + longest_seconds
    ended = any(ends(entry) for entry in batch)
    while not ended and len(batch) < limit:
        wait = min(idle_seconds, deadline - time.monotonic())
        if wait <= 0:
            break
        cut.wait(wait)
        arrived = False
        while len(batch) < limit:
            try:
                entry = q.get_nowait()
            except queue.Empty:
                break
            arrived = True
            batch.append(entry)
            if ends(entry):
                ended = True
                break
        if not arrived:
            break
    return batch
