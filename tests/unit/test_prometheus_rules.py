"""The Prometheus configuration and alert rules, checked by promtool, and each alert's unit
tests (deploy/prometheus/alerts_test.yml)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("promtool")
    if tool is None:
        message = "promtool not found (Debian: apt-get install prometheus)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return subprocess.run(
        [tool, *args], cwd=DEPLOY, capture_output=True, text=True, check=False, timeout=60
    )


@pytest.mark.parametrize(
    "args",
    [
        ("check", "rules", "alerts.yml"),
        ("check", "config", "prometheus.yml"),
        ("test", "rules", "alerts_test.yml"),
    ],
    ids=["rules", "config", "alert-tests"],
)
def test_promtool(args: tuple[str, ...]) -> None:
    result = promtool(*args)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_unit_test_and_a_runbook_entry() -> None:
    alerts = [
        line.split("alert:")[1].strip()
        for line in (DEPLOY / "alerts.yml").read_text().splitlines()
        if line.strip().startswith("- alert:")
    ]
    tests = (DEPLOY / "alerts_test.yml").read_text()
    runbook = (DEPLOY / "runbook.md").read_text()
    assert len(alerts) == 7
    for alert in alerts:
        assert f"alertname: {alert}\n        exp_alerts:\n          - exp_labels" in tests, alert
        assert f"## {alert}\n" in runbook, alert
