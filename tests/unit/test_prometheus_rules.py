"""The Prometheus configuration and alert rules, checked by promtool, and each alert's unit
tests (deploy/prometheus/alerts_test.yml)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.support import require_tool

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    tool = require_tool("promtool", "prometheus")
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
    assert len(alerts) == 10
    for alert in alerts:
        assert f"alertname: {alert}\n        exp_alerts:\n          - exp_labels" in tests, alert
        assert f"## {alert}\n" in runbook, alert
