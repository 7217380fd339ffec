"""FakeKraken driven through real ccxt (ccxt.kraken pointed at the loopback server).

What every fake does alike (markets, balances, auth errors, nonces, faults, spacing, overlap,
auto-accounts, 404) is tested for all of them in tests/test_fakes_common.py; here, Kraken's own
and the machinery shown through it (stats endpoints, keep-alive, the CLI)."""
from __future__ import annotations

import base64
import hashlib
import hmac
import subprocess
import sys
from pathlib import Path

import ccxt
import pytest
import requests

from tests.fakes import FakeKraken, fake_class
from tests.fakes.ccxt_clients import (MsNonce, fake_fixtures, load_public, make_client,
                                      private_client, violations_with)

ROOT = Path(__file__).resolve().parents[1]

fake_server, fake, public = fake_fixtures(FakeKraken)


def test_balance_ex_wire_format_and_legacy_balance(fake, public):
    creds, ex = private_client(fake, public,
                               {"BTC": "0.5", "USD": "1000", "EUR": "0", "DOT": "12.345"})
    assert creds["passphrase"] is None
    assert len(base64.b64decode(creds["api_secret"])) == 64
    raw = ex.fetch_balance()["info"]["result"]
    assert raw["XXBT"] == {"balance": "0.5000000000", "hold_trade": "0.0000000000"}
    assert raw["ZUSD"]["balance"] == "1000.0000" and raw["ZEUR"]["balance"] == "0.0000"
    fake.set_balance(creds["api_key"], "BTC", "0.75")
    # the legacy Balance endpoint, through ccxt's implicit API
    legacy = ex.privatePostBalance()
    assert legacy["result"]["XXBT"] == "0.7500000000"
    calls = fake.private_calls(creds["api_key"])
    assert [c.path for c in calls] == ["/0/private/BalanceEx", "/0/private/Balance"]
    assert all(c.kind == "private" and c.end >= c.start for c in calls)
    assert fake.violations == violations_with()


def test_replayed_nonce_is_invalid_nonce(fake, public):
    _creds, ex = private_client(fake, public, {"BTC": "1"})
    ex.nonce = lambda: 1_700_000_000_000
    ex.fetch_balance()
    ex.options["lastNonce"] = 0            # defeat ccxt's own incrementing guard: replay
    with pytest.raises(ccxt.InvalidNonce):
        ex.fetch_balance()
    ex.options["lastNonce"] = 0
    ex.nonce = lambda: 1_600_000_000_000   # lower
    with pytest.raises(ccxt.InvalidNonce):
        ex.fetch_balance()
    assert fake.violations["nonce"] == 2
    ex.nonce = MsNonce()
    assert ex.fetch_balance()["total"]["BTC"] == 1.0


def test_fault_for_one_key_leaves_others_alone(fake, public):
    (a, ex_a), (_, ex_b) = (private_client(fake, public, {"BTC": "1"}),
                            private_client(fake, public, {"BTC": "2"}))
    fake.inject("http_500", api_key=a["api_key"], count=2)
    assert ex_b.fetch_balance()["total"]["BTC"] == 2.0
    for _ in range(2):
        with pytest.raises(ccxt.ExchangeNotAvailable):
            ex_a.fetch_balance()
    assert ex_a.fetch_balance()["total"]["BTC"] == 1.0
    fake.inject("invalid_key")                        # any key
    with pytest.raises(ccxt.AuthenticationError):
        ex_b.fetch_balance()


def test_public_spacing_counted():
    with FakeKraken(public_min_interval=0.5) as fake:
        load_public(fake)            # Assets then AssetPairs back to back
        assert fake.violations["public_spacing"] == 1


def test_stats_and_reset_endpoints(fake, public):
    creds = fake.add_account({"BTC": "1"})
    make_client(fake, creds, public=public).fetch_balance()
    stats = requests.get(fake.url + "/__fake__/stats", timeout=2).json()
    assert stats == {"violations": {"nonce": 0, "spacing": 0, "overlap": 0, "signature": 0,
                                    "public_spacing": 0},
                     "private_calls": 1, "public_calls": 2}
    assert requests.post(fake.url + "/__fake__/reset", timeout=2).status_code == 200
    assert fake.stats()["private_calls"] == 0 and fake.calls == []


def test_keep_alive_and_raw_signature(fake):
    """Raw HTTP: one keep-alive connection serves several requests; a tampered body fails."""
    creds = fake.add_account({"USD": "5"})
    secret = base64.b64decode(creds["api_secret"])
    session = requests.Session()

    def post(nonce, body=None):
        body = body if body is not None else f"nonce={nonce}"
        msg = b"/0/private/Balance" + hashlib.sha256(f"{nonce}nonce={nonce}".encode()).digest()
        sig = base64.b64encode(hmac.new(secret, msg, hashlib.sha512).digest()).decode()
        return session.post(fake.url + "/0/private/Balance", data=body,
                            headers={"API-Key": creds["api_key"], "API-Sign": sig,
                                     "Content-Type": "application/x-www-form-urlencoded"})

    assert post(1).json() == {"error": [], "result": {"ZUSD": "5.0000"}}
    assert post(2).json()["result"] == {"ZUSD": "5.0000"}
    assert post(3, body="nonce=3&asset=ZUSD").json() == {"error": ["EAPI:Invalid key"]}
    assert fake.violations["signature"] == 1


def test_cli_ready_line_and_sigterm():
    assert fake_class("kraken") is FakeKraken
    proc = subprocess.Popen([sys.executable, "-m", "tests.fakes", "kraken", "--auto-accounts",
                             "--latency", "0.001"], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline().strip()
        assert line.startswith("READY http://127.0.0.1:")
        url = line.split()[1]
        assert requests.get(url + "/__fake__/stats", timeout=2).json()["private_calls"] == 0
    finally:
        proc.terminate()
    assert proc.wait(5) == 0
