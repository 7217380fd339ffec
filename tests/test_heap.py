"""`settle_heap`: what a serving process made at start-up is left out of later collections."""
from __future__ import annotations

import gc

from bot.app.heap import settle_heap


def test_settled_objects_are_no_longer_walked_by_the_collector():
    made_at_start = [object()]  # a tracked container
    try:
        frozen = settle_heap()
        made_later = [object()]
        assert frozen >= 1 and gc.get_freeze_count() == frozen
        tracked = [id(o) for generation in range(3) for o in gc.get_objects(generation)]
        assert id(made_at_start) not in tracked
        assert id(made_later) in tracked
        gc.collect()
        assert id(made_at_start) not in [id(o) for o in gc.get_objects(2)]
    finally:
        gc.unfreeze()  # the rest of the suite runs with a normal collector
