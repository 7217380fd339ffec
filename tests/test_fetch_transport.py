"""Slow, hung and oversized answers are bounded, and one slow exchange never delays another.

Times come from the fakes' own records (``transport_events``: when the fake began and stopped
writing and why it stopped; ``calls``: when each request arrived), all ``time.monotonic()``.
"""
from __future__ import annotations

import threading
import time

import pytest

from bot.core.state import Status
from tests.fakes import FakeBinance, FakeKraken
from tests.fakes.ccxt_clients import wait_for
from tests.fetch_support import auto_broker, binance_key, kraken_key, service_for, write_config

TIMEOUT = 1.0   # request_timeout_seconds of FAST_SETTINGS


@pytest.mark.parametrize("fault", ["trickle", "hang"])
def test_a_trickling_or_hung_server_fails_within_the_total_deadline(tmp_path, fault):
    with FakeKraken(auto_accounts=True) as fake:
        fake.trickle_interval = 0.05          # a 300-byte body would take 15 s
        users = {"alice": {"kraken": auto_broker(fake, kraken_key(1))}}
        with service_for(write_config(tmp_path, users, rate_limits={"kraken": {"public_min_interval_seconds": 0}})) as service:
            assert service.refresh()[0].status is Status.OK
            fake.inject(fault, kraken_key(1), count=2)
            state, = service.refresh()
        wait_for(lambda: len(fake.transport_events) == 2)
        events = fake.transport_events
        assert state.status is Status.STALE and state.error.startswith("RequestTimeout")
        assert [e.outcome for e in events] == ["client_closed"] * 2
        assert all(e.end - e.start <= TIMEOUT + 0.3 for e in events)


def test_a_huge_body_is_refused_without_reading_it(tmp_path):
    with FakeKraken(auto_accounts=True) as fake:
        users = {"alice": {"kraken": auto_broker(fake, kraken_key(1))}}
        with service_for(write_config(tmp_path, users, rate_limits={"kraken": {"public_min_interval_seconds": 0}})) as service:
            fake.inject("huge_body", kraken_key(1), count=2)
            state, = service.refresh()
        wait_for(lambda: len(fake.transport_events) == 1)
        event, = fake.transport_events                  # not retried
        assert state.status is Status.ERROR and state.error.startswith("MalformedResponse")
        assert "cap" in state.error
        assert event.outcome == "client_closed" and event.bytes_sent < fake.huge_body_size // 2


def test_a_hung_exchange_does_not_delay_another_one(tmp_path):
    with FakeKraken(auto_accounts=True) as slow, FakeBinance(auto_accounts=True) as fast:
        users = {f"k{i}": {"kraken": auto_broker(slow, kraken_key(i))} for i in range(20)}
        users["b"] = {"binance": auto_broker(fast, binance_key(1))}
        root = write_config(tmp_path, users, request_timeout_seconds=3.0, retries=0,
                            rate_limits={"kraken": {"public_min_interval_seconds": 0}})
        for i in range(20):
            slow.inject("hang", kraken_key(i))
        with service_for(root) as service:
            states = {s.owner: s for s in service.refresh()}
        wait_for(lambda: len(slow.transport_events) == 20)
        hung = slow.transport_events
        binance_read, = fast.private_calls()
        assert states["b"].status is Status.OK
        assert all(states[f"k{i}"].error.startswith("RequestTimeout") for i in range(20))
        assert binance_read.end < min(e.end for e in hung) - 2.0   # answered long before any hang ended
        assert max(e.end - e.start for e in hung) <= 3.0 + 0.3


def test_first_read_timeout_bounds_the_whole_wait_not_each_account(tmp_path):
    with FakeKraken(auto_accounts=True) as fake:
        users = {f"k{i}": {"kraken": auto_broker(fake, kraken_key(i))} for i in range(20)}
        root = write_config(tmp_path, users, request_timeout_seconds=5.0, retries=0, first_read_timeout_seconds=0.5,
                            rate_limits={"kraken": {"public_min_interval_seconds": 0}})
        for i in range(20):
            fake.inject("hang", kraken_key(i))
        with service_for(root) as service:
            started = time.monotonic()
            states = service.refresh()
            waited = time.monotonic() - started
            assert all(s.status is Status.ERROR and s.error.startswith("Pending") for s in states)
        assert waited < 1.5


def test_close_cancels_reads_in_flight_within_a_few_seconds(tmp_path):
    with FakeKraken(auto_accounts=True) as fake:
        users = {f"k{i}": {"kraken": auto_broker(fake, kraken_key(i))} for i in range(10)}
        root = write_config(tmp_path, users, request_timeout_seconds=60.0, first_read_timeout_seconds=60,
                            rate_limits={"kraken": {"public_min_interval_seconds": 0}})
        for i in range(10):
            fake.inject("hang", kraken_key(i))
        results = []
        with service_for(root) as service:
            waiter = threading.Thread(target=lambda: results.extend(service.refresh()))
            waiter.start()
            wait_for(lambda: len(fake.private_calls()) == 10, timeout=10)
            started = time.monotonic()
            service.close()
            closing = time.monotonic() - started
            waiter.join(5)
        wait_for(lambda: len(fake.transport_events) == 10)
        assert closing < 3.0 and not waiter.is_alive()
        assert [s.error for s in results] == ["ServiceClosed: the balance service is closed"] * 10
        assert {e.outcome for e in fake.transport_events} == {"client_closed"}
