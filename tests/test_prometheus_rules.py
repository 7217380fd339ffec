"""The shipped Prometheus alert rules (config/prometheus/alerts.yml): promtool checks them, runs
their unit tests (alerts_test.yml), and every metric they use is one that /metrics exports."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from bot.views.metrics import render_metrics

RULES_DIR = Path(__file__).resolve().parents[1] / "config" / "prometheus"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed (Debian package 'prometheus')")


def promtool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([PROMTOOL, *args], cwd=RULES_DIR, capture_output=True, text=True, timeout=60)


@needs_promtool
def test_promtool_check_rules():
    result = promtool("check", "rules", "alerts.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 6 rules found" in result.stdout


@needs_promtool
def test_promtool_test_rules():
    result = promtool("test", "rules", "alerts_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_rules_use_only_exported_metric_names(config, managers):
    config.user("u1", {"kraken": {"paper": True, "balances": {"USD": "1"}}})
    manager = config.manager()
    managers.append(manager)
    manager.refresh()
    exported = set(re.findall(r"^# TYPE (\w+) ", render_metrics(manager).decode(), re.MULTILINE))
    used = set(re.findall(r"\bmultibalance_\w+", (RULES_DIR / "alerts.yml").read_text()))
    assert used and used <= exported, used - exported
    tested = set(re.findall(r"\bmultibalance_\w+", (RULES_DIR / "alerts_test.yml").read_text()))
    assert tested <= exported, tested - exported
