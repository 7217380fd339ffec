"""Draining a worker's queue in batches: block for one item, then take what else is waiting."""
from __future__ import annotations

import queue


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
