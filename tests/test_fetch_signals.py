"""What an answer says about the limits (bot.exchanges.signals) and what the budget and the lane
do with it, on a hand-moved clock: Retry-After in both forms, bans, per-key refusals, usage headers."""
from __future__ import annotations

import logging
from email.utils import formatdate

import pytest

from bot.exchanges.budget import AddressBudget
from bot.exchanges.lane import KeyLane
from bot.exchanges.limits import BUILT_IN, KRAKEN_TIERS
from bot.exchanges.signals import bybit_exhausted_until, classify, retry_after_seconds
from tests.clock import Clock


def test_retry_after_as_seconds_or_an_http_date():
    assert retry_after_seconds("30") == 30.0 and retry_after_seconds("0.250") == 0.25
    assert 58 <= retry_after_seconds(formatdate(1_000_060, usegmt=True), now=1_000_000.5) <= 60
    assert retry_after_seconds(None) is None and retry_after_seconds("soon") is None


def test_each_exchanges_refusal_is_named():
    assert classify(429, {"Retry-After": "7"}, None) == ("http_429", 7.0, False)
    assert classify(418, {"Retry-After": "120"}, {"code": -1003}) == ("ban_418", 120.0, True)
    assert classify(200, {}, {"error": ["EAPI:Rate limit exceeded"]}).reason == "key_counter"
    assert classify(200, {}, {"error": ["EGeneral:Too many requests"]}).reason == "too_many_requests"
    assert classify(429, {}, {"code": "50011"}).reason == "http_429"
    assert classify(200, {}, {"code": "50011", "msg": "Too Many Requests"}).reason == "okx_50011"
    assert classify(200, {}, {"retCode": 10006}).reason == "bybit_10006"
    assert classify(200, {}, {"error": []}) is None and classify(500, {}, None) is None
    assert bybit_exhausted_until({"X-Bapi-Limit-Status": "1", "X-Bapi-Limit-Reset-Timestamp": "1700000000500"}) == 1700000000.5
    assert bybit_exhausted_until({"X-Bapi-Limit-Status": "50", "X-Bapi-Limit-Reset-Timestamp": "1"}) is None


def budget(exchange: str, clock) -> AddressBudget:
    return AddressBudget(BUILT_IN[exchange], "api.example", None, concurrency=4, clock=clock)


class Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def test_a_429_pauses_the_host_for_its_retry_after_and_a_418_bans_it():
    records = Records()
    logger = logging.getLogger("bot.exchanges.budget")
    logger.addHandler(records)
    level = logger.level
    logger.setLevel(logging.WARNING)   # whatever an earlier test configured (setLevel clears the cache)
    clock = Clock(1_000_000.0)
    b = budget("binance", clock)
    b.observe(429, {"Retry-After": "30"}, {"code": -1003}, private=True)
    assert b.paused_until == 1_000_030.0 and b.pause_reason == "http_429"
    b.observe(429, {"Retry-After": "5"}, None, private=False)     # a shorter one does not shorten it
    assert b.paused_until == 1_000_030.0
    b.observe(418, {"Retry-After": "120"}, None, private=True)
    assert b.paused_until == 1_000_120.0 and b.pause_reason == "ban_418"
    logger.removeHandler(records)
    logger.setLevel(level)
    assert b.throttled == {"http_429": 2, "ban_418": 1}
    assert len([m for m in records.messages if "paused" in m]) == 1   # one pause, logged once


def test_a_refusal_without_retry_after_backs_off_exponentially():
    clock = Clock(1_000_000.0)
    b = budget("okx", clock)
    b.observe(429, {}, {"code": "50011"}, private=False)        # public: the host backs off
    first = b.paused_until - clock.now
    clock.now = b.paused_until
    b.observe(429, {}, {"code": "50011"}, private=False)
    assert first == 1.0 and b.paused_until - clock.now == 2.0
    b.observe(200, {}, {"code": "0"}, private=False)            # a success resets the back-off
    clock.now = b.paused_until
    b.observe(429, {}, {"code": "50011"}, private=False)
    assert b.paused_until - clock.now == 1.0


def test_a_per_key_refusal_pauses_only_that_key():
    clock = Clock(1_000_000.0)
    b = budget("kraken", clock)
    lane = KeyLane(1.1, counter=KRAKEN_TIERS["starter"], clock=clock)
    b.observe(200, {}, {"error": ["EAPI:Rate limit exceeded"]}, private=True, lane=lane)
    assert b.paused_until == 0.0                                 # the host goes on
    assert lane._counter_ready(clock.now, 1.0) > clock.now + 2   # the key waits for its counter to decay


def test_binance_usage_above_this_process_moves_the_schedule_and_near_the_limit_pauses():
    clock = Clock(600_000.0)                                     # the start of a clock minute
    b = budget("binance", clock)
    b._count_sent(clock.now, 20)
    slot = b._next_slot
    b.observe(200, {"X-MBX-USED-WEIGHT-1M": "1020"}, {}, private=True)   # someone else spent 1,000
    assert b._next_slot - max(slot, clock.now) == pytest.approx(1000 / b._rate) and b.paused_until == 0.0
    clock.now += 10
    b.observe(200, {"X-MBX-USED-WEIGHT-1M": "5900"}, {}, private=True)   # near 6,000: wait for the minute
    assert b.paused_until == 600_060.0 and b.pause_reason == "usage"
