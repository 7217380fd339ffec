"""`gather_batch`: a burst is one batch; a stop or flush (queued, then ``cut`` set) ends it at once."""
from __future__ import annotations

import queue
import threading

from bot.core.queues import gather_batch

END = object()


def is_end(entry) -> bool:
    return entry is END


def test_what_is_queued_is_one_batch_and_a_lone_item_is_not_held_beyond_its_window():
    q, cut = queue.Queue(), threading.Event()
    for i in range(5):
        q.put(i)
    assert gather_batch(q, 100, 0.01, 60, is_end, cut) == [0, 1, 2, 3, 4]
    q.put("lone")
    assert gather_batch(q, 100, 0.01, 60, is_end, cut) == ["lone"]   # returns after one empty window
    for i in range(7):
        q.put(i)
    assert gather_batch(q, 3, 0.01, 60, is_end, cut) == [0, 1, 2]    # the limit
    assert gather_batch(q, 100, 0.01, 60, is_end, cut) == [3, 4, 5, 6]


def test_a_flush_ends_a_batch_that_would_otherwise_gather_for_a_minute():
    q, cut = queue.Queue(), threading.Event()
    got = []
    q.put("first")
    gatherer = threading.Thread(target=lambda: got.append(gather_batch(q, 100, 60, 60, is_end, cut)))
    gatherer.start()
    q.put("second")
    q.put(END)
    cut.set()          # as flush() and stop() do, after queueing their marker
    gatherer.join(10)  # a minute's window: only the cut ends it within 10 s
    assert not gatherer.is_alive() and got == [["first", "second", END]]
