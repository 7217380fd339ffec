"""`AtMostEvery`: a repeating logger lets one record through per period and says how many it held."""
from __future__ import annotations

import logging

from bot.app.logsetup import AtMostEvery


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_one_record_per_period_and_the_next_one_counts_the_held_back(caplog):
    clock = Clock()
    logger = logging.getLogger("test.throttled")
    throttle = AtMostEvery(10.0, clock)
    logger.addFilter(throttle)
    try:
        caplog.set_level(logging.WARNING, logger="test.throttled")
        for depth in range(1, 6):
            logger.warning("Task queue depth is %d", depth)
            clock.now += 1.0
        clock.now += 10.0
        logger.warning("Task queue depth is %d", 9)
        logger.warning("Task queue depth is %d", 10)
        clock.now += 10.0
        logger.warning("Task queue depth is %d", 11)
    finally:
        logger.removeFilter(throttle)
    assert [r.getMessage() for r in caplog.records] == [
        "Task queue depth is 1",
        "Task queue depth is 9 (4 more not shown since the last one)",
        "Task queue depth is 11 (1 more not shown since the last one)",
    ]
