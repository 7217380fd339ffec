"""Packaging: the console scripts an install provides, and the deployment files' structure."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ("multibalance", "multibalance-web", "multibalance-monitor")


def test_an_install_provides_the_console_scripts(tmp_path):
    """``pip install .`` (no dependencies: they are this environment's) writes every console
    script, and each answers --version and --help."""
    target = tmp_path / "site"
    build = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                            "--target", str(target), str(ROOT)], capture_output=True, text=True, timeout=300,
                           cwd=tmp_path)
    assert build.returncode == 0, build.stderr
    env = {**os.environ, "PYTHONPATH": str(target)}
    for name in SCRIPTS:
        script = target / "bin" / name
        assert script.is_file(), sorted(p.name for p in (target / "bin").iterdir())
        version = subprocess.run([str(script), "--version"], capture_output=True, text=True, env=env, timeout=60,
                                 cwd=tmp_path)
        assert version.returncode == 0 and re.search(r"\(multibalance\) \d+\.\d+\.\d+", version.stdout), version
        helped = subprocess.run([str(script), "--help"], capture_output=True, text=True, env=env, timeout=60,
                                cwd=tmp_path)
        assert helped.returncode == 0 and "--log-format" in helped.stdout


def test_the_lock_pins_every_declared_dependency():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = project["dependencies"] + project["optional-dependencies"]["dev"]
    names = {re.split(r"[<>=\[ ;]", d, maxsplit=1)[0].lower().replace("_", "-") for d in declared}
    pinned = {line.split("==")[0].lower().replace("_", "-")
              for line in (ROOT / "requirements.lock").read_text().splitlines() if "==" in line}
    assert names <= pinned, sorted(names - pinned)


def test_the_compose_file_names_real_services_and_commands():
    compose = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())
    services = compose["services"]
    assert {"postgres", "monitor", "web", "worker-1", "worker-2", "worker-3"} <= set(services)
    assert all(services[f"worker-{n}"]["command"][0] == "multibalance-worker" for n in (1, 2, 3))
    scripts = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"])
    for name, service in services.items():
        assert "image" in service or "build" in service, name
        for dependency in service.get("depends_on", {}):
            assert dependency in services, (name, dependency)
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), (name, port)  # published on loopback only
        command = service.get("command")
        if command and name != "postgres":
            assert command[0] in scripts, (name, command)
            assert "--config" in command
    assert (ROOT / "Dockerfile").is_file() and "requirements.lock" in (ROOT / "Dockerfile").read_text()


def test_systemd_units_start_installed_console_scripts():
    units = sorted((ROOT / "deploy" / "systemd").glob("*.service"))
    assert len(units) >= 2
    scripts = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"])
    for unit in units:
        text = unit.read_text()
        start = re.search(r"^ExecStart=(\S+)", text, re.M).group(1)
        assert Path(start).name in scripts, unit.name
        assert "KillSignal=SIGTERM" in text and "[Install]" in text
