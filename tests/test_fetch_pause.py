"""Nothing is sent during a pause: once a 418 is answered, the other reads that were waiting for
their budget slots wait for the ban (or give up) instead of calling into it. Calls already handed
to the HTTP client when the 418 came back cannot be recalled: they arrive within `IN_FLIGHT`."""
from __future__ import annotations

from tests.fakes import FakeBinance
from tests.fetch_support import auto_broker, binance_key, service_for, write_config

IN_FLIGHT = 0.4  # seconds: a call handed to the client before the 418 was read (the loop may be busy)


def test_no_call_is_sent_into_a_ban(tmp_path):
    scale = 10.0  # the ban lasts 12 s
    with FakeBinance(enforce_limits=True, time_scale=scale, auto_accounts=True) as fake:
        fake.inject("http_418")
        users = {f"b{i}": {"binance": auto_broker(fake, binance_key(i))} for i in range(30)}
        with service_for(write_config(tmp_path, users, first_read_timeout_seconds=2), time_scale=scale) as service:
            states = service.refresh()
        first = fake.retry_afters()[0]
        arrivals = [e for e in fake.ip_log() if first.issued < e.time < first.until]
        assert all(e.time < first.issued + IN_FLIGHT for e in arrivals), arrivals
        assert len(arrivals) < 5  # the pause held the rest back
        assert not [s for s in states if s.status.value == "ok"]  # every read waits for the ban's end
