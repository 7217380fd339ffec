"""deploy/grafana/multibalance.json: every query is valid PromQL (promtool) and names only
metrics the exporter emits."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.views.metrics import render_metrics

ROOT = Path(__file__).resolve().parents[1]
DASHBOARD = ROOT / "deploy" / "grafana" / "multibalance.json"
PROMTOOL = shutil.which("promtool")
HISTOGRAM_SUFFIXES = ("_bucket", "_count", "_sum")


def queries() -> list[str]:
    data = json.loads(DASHBOARD.read_text())
    found = [t["expr"] for p in data["panels"] for t in p.get("targets", ())]
    found += [v["query"] for v in data["templating"]["list"] if v["type"] == "query"]
    return found


def as_promql(expr: str) -> str:
    """The query with Grafana's template variables filled in (label_values() is Grafana's own)."""
    expr = re.sub(r"\$\{?\w+\}?", ".*", expr)
    match = re.fullmatch(r"label_values\((\w+),\s*\w+\)", expr)
    return match.group(1) if match else expr


def emitted_names(config, managers) -> set[str]:
    config.user("alice", {"paper": {"paper": True, "balances": {"USD": "5", "BTC": "1"}, "prices": {"BTC": "10"}}})
    manager = config.manager()
    managers.append(manager)
    manager.refresh()
    names = set()
    for family in text_string_to_metric_families(render_metrics(manager).decode()):
        names.add(family.name)
        names.update(sample.name for sample in family.samples)
        if family.type == "histogram":
            names.update(family.name + suffix for suffix in HISTOGRAM_SUFFIXES)
        if family.type == "counter":
            names.add(family.name + "_total")
    return names


def test_every_query_names_only_emitted_metrics(config, managers):
    emitted = emitted_names(config, managers)
    used = {name for expr in queries() for name in re.findall(r"\bmultibalance_[a-z_]+\b", expr)}
    assert len(used) >= 10
    assert used <= emitted, sorted(used - emitted)


@pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed (Debian package 'prometheus')")
def test_every_query_is_valid_promql(tmp_path):
    rules = {"groups": [{"name": "grafana", "rules": [
        {"record": f"grafana:query_{i}", "expr": as_promql(expr)} for i, expr in enumerate(queries())]}]}
    path = tmp_path / "rules.json"  # promtool reads YAML, and JSON is YAML
    path.write_text(json.dumps(rules))
    result = subprocess.run([PROMTOOL, "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(queries())} rules found" in result.stdout
