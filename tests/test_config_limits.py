"""The range table, string formats and file kind checks of the configuration, case by case.

Every entry of `NUMBER_RANGES` is tried where it lives in the files: 1e400 and just outside each
end are refused with the range in the message, each end itself is accepted. The table is
checked against the typed settings so that no number escapes it.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import unicodedata
from decimal import Decimal

import pytest

from bot.config import ConfigError, MetricsSettings, RateLimit, Settings
from bot.config.alerts import AlertSettings, RuleSettings
from bot.config.ranges import NUMBER_RANGES
from bot.config.web import WebSettings
from bot.core.secrets import WithholdUrlPaths, install_log_redaction, redact_url

NUMBER = "__NUMBER__"


def place(key: str) -> tuple[str, dict]:
    """(file, JSON object) with the number of ``key`` at its place, as the ``NUMBER`` marker."""
    section, _, name = key.rpartition(".")
    if key.startswith("brokers.*."):
        kind = key.split(".")[2]
        entry = {"paper": True, kind: {"BTC": NUMBER}}
        return "users/alice.json", {"user_id": "alice", "brokers": {"p": entry}}
    if section == "rate_limits.*":
        return "settings.json", {"rate_limits": {"kraken": {name: NUMBER}}}
    if section:
        return "settings.json", {section: {name: NUMBER}}
    return "settings.json", {name: NUMBER}


def load_with(config, key: str, literal: str):
    file, data = place(key)
    if file == "settings.json":
        config.user("alice", {"p": {"paper": True, "balances": {"USD": 1}}})
    (config.root / file).write_text(json.dumps(data).replace(f'"{NUMBER}"', literal))
    return config.load()


def field_path(key: str) -> str:
    return key.replace("rate_limits.*", "rate_limits.kraken").replace("brokers.*", "brokers.p").replace(".*", ".BTC")


def outside(limits) -> list[str]:
    step = Decimal(1) if limits.whole else Decimal("0.001")
    below = limits.low if limits.above else limits.low - step
    return [str(below), str(limits.high + step), "1e400", "-1e400"]


@pytest.mark.parametrize("key", sorted(NUMBER_RANGES))
def test_every_number_outside_its_range_is_refused_with_the_range(config, key):
    limits = NUMBER_RANGES[key]
    for literal in outside(limits):
        with pytest.raises(ConfigError) as error:
            load_with(config, key, literal)
        message = str(error.value)
        assert f"field '{field_path(key)}': must be " in message, message
        assert f"(allowed: {limits.describe()})" in message, message
        assert "\n" not in message and "inf" not in message.lower()


@pytest.mark.parametrize("key", sorted(NUMBER_RANGES))
def test_both_ends_of_every_range_are_accepted(config, key):
    limits = NUMBER_RANGES[key]
    ends = [limits.high] + ([] if limits.above else [limits.low])
    if limits.above:
        ends.append(limits.low + (Decimal(1) if limits.whole else Decimal("0.001")))
    for end in ends:
        load_with(config, key, str(end))


def numeric_fields(cls) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)
            if any(t in str(f.type) for t in ("float", "int", "Decimal")) and "Mapping" not in str(f.type)}


@pytest.mark.parametrize("cls, prefix", [(Settings, ""), (RuleSettings, "alerts."), (AlertSettings, "alerts."),
                                         (WebSettings, "web."), (MetricsSettings, "metrics."),
                                         (RateLimit, "rate_limits.*.")])
def test_the_table_has_every_number_of_the_settings(cls, prefix):
    missing = {prefix + name for name in numeric_fields(cls)} - set(NUMBER_RANGES)
    assert missing == set()
    assert numeric_fields(cls)


def test_a_user_override_out_of_range_names_the_user_file(config):
    config.user("alice", {"p": {"paper": True, "balances": {"USD": 1}}})
    (config.root / "users" / "alice.json").write_text(
        '{"user_id": "alice", "alerts": {"cooldown_minutes": 1e400}}')
    with pytest.raises(ConfigError) as error:
        config.load()
    assert str(error.value).startswith(f"{config.root / 'users' / 'alice.json'}: field 'alerts.cooldown_minutes': "
                                       f"must be <= 10080")


def test_user_ids_are_nfc_normalised(config):
    nfd = unicodedata.normalize("NFD", "josé")
    (config.root / "users" / f"{nfd}.json").write_text(json.dumps({"user_id": nfd, "name": "José"}))
    [user] = config.load().users
    assert user.user_id == unicodedata.normalize("NFC", "josé") != nfd


@pytest.mark.parametrize("user_id", ["alice", "bob.smith", "user_42", "a-b", "Zoë", "A" * 64])
def test_plain_user_ids_are_accepted(config, user_id):
    config.user(user_id, {})
    assert [u.user_id for u in config.load().users] == [user_id]


@pytest.mark.parametrize("user_id", ["-x", "_x", ".x", "a b", "a:b", "A" * 65, "zero\u200bwidth", "x\u0302"])
def test_user_ids_outside_the_safe_set_are_refused(config, user_id):
    (config.root / "users" / f"{user_id}.json").write_text(json.dumps({"user_id": user_id}))
    with pytest.raises(ConfigError) as error:
        config.load()
    assert "field 'user_id'" in str(error.value)


@pytest.mark.parametrize("code, accepted", [("USD", True), ("usdt", True), ("FDUSD", True), ("EU", False),
                                            ("XXXXXXXX", False), ("U$D", False), ("123", False), ("", False)])
def test_base_currency_codes(config, code, accepted):
    config.settings(base_currency=code)
    if accepted:
        assert config.load().settings.base_currency == code.upper()
    else:
        with pytest.raises(ConfigError, match="field 'base_currency'"):
            config.load()


@pytest.mark.parametrize("url", ["https://api.kraken.com", "http://127.0.0.1:8080/", "https://[::1]:8443"])
def test_bare_api_urls_are_accepted(config, url):
    config.user("alice", {"kraken": {"api_url": url}})
    assert config.load().users[0].brokers[0].api_url == url


def test_a_byte_order_mark_and_a_symlink_to_a_regular_file_are_fine(config):
    target = config.root / "real-settings.json"
    target.write_bytes(b"\xef\xbb\xbf" + json.dumps({"base_currency": "EUR"}).encode())
    os.symlink(target.name, config.root / "settings.json")
    assert config.load().settings.base_currency == "EUR"


def test_a_fifo_as_dotenv_is_refused_without_waiting(config):
    os.mkfifo(config.root / ".env")  # opening it for reading would wait for a writer forever
    with pytest.raises(ConfigError, match=r"\.env: is a FIFO"):
        config.load()


def test_duplicate_broker_names_after_normalisation_are_refused(config):
    nfc, nfd = unicodedata.normalize("NFC", "café"), unicodedata.normalize("NFD", "café")
    config.user("alice", {nfc: {"paper": True}, nfd: {"paper": True}})
    with pytest.raises(ConfigError, match="duplicate broker"):
        config.load()


@pytest.mark.parametrize("url, shown", [
    ("https://hooks.slack.com/services/T0/B0/XXXX", "https://hooks.slack.com/…"),
    ("http://user:pass@127.0.0.1:9093/am?x=1", "http://127.0.0.1:9093/…"),
    ("http://host?token=abc", "http://host/…"),
    ("https://me:pass/with/slash@api.example.com/x", "https://api.example.com/…"),
    ("https://me:pass/with/slash", "https://…/…"),
    ("localhost:9093/secret", "…"),
])
def test_urls_are_shown_by_scheme_and_host(url, shown):
    assert redact_url(url) == shown


@pytest.mark.parametrize("logger, message, args", [
    ("urllib3.connectionpool", '%s://%s:%s "%s %s %s" %s %s',
     ("http", "127.0.0.1", 9000, "POST", "/hook/TOKEN?k=TOKEN", "HTTP/1.1", 204, 0)),
    ("urllib3.util.retry", "Incremented Retry for (url='%s'): %r", ("/hook/TOKEN", "Retry(total=1)")),
    ("urllib3.connectionpool", "Retrying (%r) after connection broken by '%r': %s", ("R", "E", "/hook/TOKEN")),
    ("urllib3.connectionpool", "Redirecting %s -> %s", ("/hook/TOKEN", "https://h.example/TOKEN")),
    ("urllib3.poolmanager", "Redirecting %s -> %s", ("https://h.example/TOKEN", "https://u:TOKEN@h.example/")),
])
def test_urllib3_debug_lines_carry_no_path(logger, message, args, caplog):
    install_log_redaction()
    install_log_redaction()  # idempotent
    assert sum(isinstance(f, WithholdUrlPaths) for f in logging.getLogger(logger).filters) == 1
    caplog.set_level(logging.DEBUG, logger=logger)
    logging.getLogger(logger).debug(message, *args)
    [record] = [r for r in caplog.records if r.name == logger]
    assert "TOKEN" not in record.getMessage() and "/…" in record.getMessage()


def test_whole_numbers_written_with_a_fraction_or_exponent(config):
    config.user("alice", {"p": {"paper": True, "balances": {"USD": 1}}})
    (config.root / "settings.json").write_text('{"retries": 2.0, "max_workers": 1e2}')
    settings = config.load().settings
    assert (settings.retries, settings.max_workers) == (2, 100)
    assert isinstance(settings.retries, int) and isinstance(settings.max_workers, int)
    (config.root / "settings.json").write_text('{"retries": 1.5}')
    with pytest.raises(ConfigError, match=r"field 'retries': must be a whole number, got 1\.5 \(allowed: 0 to 10\)"):
        config.load()
