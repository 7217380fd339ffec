"""FakeCoinbase driven through real ccxt (``ccxt.coinbase`` with the fake's CCXT_OPTIONS).

Both authentication schemes are exercised: CDP keys (ES256 JWT per request) and legacy HMAC keys.
ccxt's own rate limiter is off in these tests (the product replaces ``throttle`` anyway).
What every fake does alike (markets, balances, auth errors, timestamps, faults, spacing, overlap,
auto-accounts, 404) is tested for all of them, both schemes, in tests/test_fakes_common.py; here,
Coinbase's own."""
from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import ccxt
import pytest

from tests.fakes.ccxt_clients import (MsNonce, fake_fixtures, load_public, make_client,
                                      private_client, violations_with)
from tests.fakes.coinbase import SCHEMES, FakeCoinbase

BALANCES = {"BTC": "0.5", "USD": "1000", "ETH": "0", "DOT": "12.3456789"}

fake_server, fake, public = fake_fixtures(FakeCoinbase)


def private(fake, public, scheme="cdp", balances=BALANCES, **client):
    """(creds, client) of a new account of ``scheme`` holding ``balances``."""
    return private_client(fake, public, balances, {"scheme": scheme}, **client)


# ---------------------------------------------------------------------------- public data
def test_exchange_rates_and_time(fake):
    with urllib.request.urlopen(fake.url + "/v2/exchange-rates") as r:
        rates = json.load(r)["data"]
    assert rates["currency"] == "USD" and rates["rates"]["BTC"] == "0.00002"
    assert rates["rates"]["EUR"] == "0.909090909091"
    ex = make_client(fake)
    assert abs(ex.fetch_time() - time.time() * 1000) < 5000


# ---------------------------------------------------------------------------- balances
@pytest.mark.parametrize("scheme", SCHEMES)
def test_balance_wire_format(fake, public, scheme):
    _creds, ex = private(fake, public, scheme)
    wallet = {a["currency"]: a for a in ex.fetch_balance()["info"]["accounts"]}
    assert wallet["BTC"]["available_balance"]["value"] == "0.5000000000000000"
    assert wallet["USD"]["type"] == "ACCOUNT_TYPE_FIAT"


@pytest.mark.parametrize("scheme", SCHEMES)
def test_balance_pagination(scheme):
    with FakeCoinbase(page_size=2) as fake:
        codes = {"BTC": "1", "ETH": "2", "DOT": "3", "USD": "4", "EUR": "5"}
        creds, pv = private(fake, load_public(fake), scheme, balances=codes)
        balance = pv.fetch_balance()
        assert balance["total"] == {k: float(v) for k, v in codes.items()}
        assert len(fake.private_calls(creds["api_key"])) == 3   # 2 + 2 + 1 wallets
        assert fake.violations == violations_with()


def test_keyed_instance_can_load_markets(fake):
    ex = make_client(fake, fake.add_account({"USD": "1"}))
    ex.load_markets()   # also calls the private transaction_summary
    assert ex.markets["BTC/USD"]["taker"] == 0.012
    assert ex.fetch_balance()["total"] == {"USD": 1.0}
    assert fake.violations == violations_with()


# ---------------------------------------------------------------------------- auth rules
def test_hmac_product_nonce_counter(fake, public):
    """The product's nonce(): strictly increasing per-key ms counter -> same-second timestamps."""
    _creds, ex = private(fake, public, "hmac", nonce=MsNonce())
    for _ in range(3):
        ex.fetch_balance()
    assert fake.violations == violations_with()


def test_cdp_replayed_jwt_nonce(fake, public):
    _creds, ex = private(fake, public, "cdp")
    ex.random_bytes = lambda length: "00" * length          # every JWT carries the same nonce
    ex.fetch_balance()
    with pytest.raises(ccxt.AuthenticationError, match="request timestamp expired"):
        ex.fetch_balance()
    assert fake.violations["nonce"] == 1 and fake.violations["signature"] == 0


@pytest.mark.parametrize("signed_url", [
    "{url}/api/v3/brokerage/products",                    # other path
    "https://api.coinbase.com/api/v3/brokerage/accounts",  # other host
])
def test_cdp_uri_claim_checked(fake, public, signed_url):
    creds, ex = private(fake, public, "cdp")
    token = ex.create_auth_token(ex.seconds(), "GET", signed_url.format(url=fake.url))
    req = urllib.request.Request(fake.url + "/api/v3/brokerage/accounts?limit=250",
                                 headers={"Authorization": "Bearer " + token})
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(req)
    assert info.value.code == 401
    assert json.loads(info.value.read())["error"] == "unauthorized"
    assert fake.violations["signature"] == 1
