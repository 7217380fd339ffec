"""``--source-address`` on the entry points that read: the exchange sees the chosen address."""
from __future__ import annotations

import json

from bot.app.cli import main
from tests.fakes import FakeBinance
from tests.fetch_support import auto_broker, binance_key, write_config


def test_the_cli_reads_from_the_source_address_it_is_given(tmp_path, capsys):
    with FakeBinance(auto_accounts=True) as fake:
        root = write_config(tmp_path, {"alice": {"binance": auto_broker(fake, binance_key(7))}},
                            database_url=f"sqlite:///{tmp_path / 'h.sqlite3'}")
        code = main(["--config", str(root), "--json", "--source-address", "127.0.0.3"])
        out = json.loads(capsys.readouterr().out)
        stats = fake.limit_stats()["by_ip"]
    assert code == 0 and out["balances"]["users"]["alice"]["binance"] == 600.0   # the fake's auto-account holdings
    assert set(stats) == {"127.0.0.3"} and stats["127.0.0.3"]["used_weight"] >= 20   # Binance counts per address


def test_a_source_address_that_is_not_an_address_is_a_usage_error(tmp_path, capsys):
    root = write_config(tmp_path, {})
    assert main(["--config", str(root), "--source-address", "laptop"]) == 2
    assert "--source-address: not an IP address" in capsys.readouterr().err
