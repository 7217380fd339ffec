"""FakeBinance driven through real ccxt (spot REST), the way the product drives it.

What every fake does alike (markets, balances, auth errors, timestamps, faults, spacing, overlap,
auto-accounts, 404) is tested for all of them in tests/test_fakes_common.py; here, Binance's own."""
from __future__ import annotations

from tests.fakes.binance import FakeBinance
from tests.fakes.ccxt_clients import fake_fixtures, make_client, paths, private_client

fake_server, fake, public = fake_fixtures(FakeBinance, scope="module")


def test_keyed_load_markets_makes_no_private_call(fake):
    ex = make_client(fake, fake.add_account({"USDT": "1"}))
    ex.load_markets()
    assert paths(fake) == [("public", "/api/v3/exchangeInfo")]


def test_balance_wire_format(fake, public):
    _creds, ex = private_client(fake, public, {"BTC": "0.5", "USDT": "1000", "ETH": "0"})
    balance = ex.fetch_balance()
    assert balance["info"]["balances"][0] == {"asset": "BTC", "free": "0.50000000",
                                              "locked": "0.00000000"}
