"""FakeOKX driven through real ccxt (v5 spot REST), the way the product drives it.

What every fake does alike (markets, balances, auth errors, timestamps, faults, spacing, overlap,
auto-accounts, 404) is tested for all of them in tests/test_fakes_common.py; here, OKX's own."""
from __future__ import annotations

import ccxt
import pytest

from tests.fakes.ccxt_clients import (fake_fixtures, make_client, paths, private_client,
                                      violations_with)
from tests.fakes.okx import FakeOKX

fake_server, fake, public = fake_fixtures(FakeOKX, scope="module")


def test_keyed_load_markets_fetches_currencies_privately(fake):
    """ccxt's okx.fetch_currencies is private and has no option to turn it off: an instance WITH
    keys calls it from load_markets. The fake serves it (signed, counted as private)."""
    ex = make_client(fake, fake.add_account({"USDT": "1"}))
    ex.load_markets()
    assert paths(fake) == [("private", "/api/v5/asset/currencies"),
                           ("public", "/api/v5/public/instruments")]
    assert ex.currencies["EUR"]["type"] == "fiat"
    assert fake.violations == violations_with()


def test_balance_wire_format(fake, public):
    _creds, ex = private_client(fake, public, {"BTC": "0.5", "USDT": "1000", "ETH": "0"})
    detail = ex.fetch_balance()["info"]["data"][0]["details"][0]
    assert (detail["ccy"], detail["eq"], detail["availBal"], detail["eqUsd"]) == \
        ("BTC", "0.5", "0.5", "25000")


def test_wrong_passphrase_is_authentication_error(fake, public):
    creds = fake.add_account({"BTC": "1"})
    ex = make_client(fake, dict(creds, passphrase="wrong-passphrase"), public=public)
    with pytest.raises(ccxt.AuthenticationError, match="50105"):
        ex.fetch_balance()
    assert fake.violations == violations_with(signature=1)
