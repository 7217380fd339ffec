"""One benchmark measurement in its own process; prints one JSON line (see tests/bench/__main__.py).

    python -m tests.bench.worker rss URL ACCOUNTS

``rss``: the manager (history on) reads ACCOUNTS Kraken accounts cold, then once more forced;
its peak RSS. The configuration directory (with the history database) lives, and is removed,
within the run.
"""
from __future__ import annotations

import json
import resource
import sys



def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_run(url: str, accounts: int) -> dict:
    from bot.config import load_config
    from bot.multi_account_broker_manager import MultiAccountBrokerManager
    from tests.bench.common import write_kraken_config
    from tests.bench.fetch_worker import NO_SPACING  # every first read waited for: the refresh is full

    with write_kraken_config(url, accounts, NO_SPACING) as root:
        manager = MultiAccountBrokerManager(load_config(root, environ={}))
        manager.refresh(force=False)
        states = manager.refresh(force=True)
        endpoint, = manager.service._registry.endpoints()
        manager.close()
    return {"maxrss_mb": peak_rss_mb(), "ok": sum(s.status.value == "ok" for s in states),
            "ccxt_instances": endpoint.instances_created}


if __name__ == "__main__":
    kind, url, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    print(json.dumps({"rss": rss_run}[kind](url, count)))
