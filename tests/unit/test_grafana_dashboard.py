"""The Grafana dashboard loads, and every panel asks for metrics the worker exports."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml
from prometheus_client.metrics_core import Metric

from crmstream import metrics

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "grafana"
METRIC = re.compile(r"\bcrmstream_[a-z_]+\b")
_SUFFIXES = {
    "counter": ("_total",),
    "histogram": ("_bucket", "_sum", "_count"),
    "gauge": ("",),
    "info": ("_info",),
}


def exported() -> set[str]:
    """Every series name the worker's registry can produce."""
    names: set[str] = set()
    families: list[Metric] = list(metrics.REGISTRY.collect())
    for family in families:
        names |= {family.name + suffix for suffix in _SUFFIXES[family.type]}
    return names


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((DEPLOY / "dashboards" / "crmstream.json").read_text())
    return loaded


def test_the_dashboard_has_the_panels_an_sre_looks_for() -> None:
    board = dashboard()
    assert board["uid"] == "crmstream"
    titles = [panel["title"] for panel in board["panels"]]
    for wanted in ("type", "lag", "Batch duration", "Dead letters", "Triggers", "Outbox",
                   "timers", "Redis"):  # fmt: skip
        assert any(wanted.lower() in title.lower() for title in titles), wanted
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids))
    for panel in board["panels"]:
        assert panel["type"] in ("timeseries", "stat")
        assert {"h", "w", "x", "y"} <= set(panel["gridPos"])
        assert panel["datasource"]["uid"] == "prometheus"
        assert panel["targets"], panel["title"]


def test_every_panel_expression_names_an_exported_metric() -> None:
    names = exported()
    for panel in dashboard()["panels"]:
        for target in panel["targets"]:
            used = METRIC.findall(target["expr"])
            assert used or "up{" in target["expr"], target["expr"]
            unknown = set(used) - names
            assert not unknown, f"{panel['title']}: {sorted(unknown)} not exported"


def test_the_provisioning_points_at_the_dashboard_and_the_datasource() -> None:
    provider = yaml.safe_load(
        (DEPLOY / "provisioning" / "dashboards" / "crmstream.yml").read_text()
    )
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
    sources = yaml.safe_load(
        (DEPLOY / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )
    assert sources["datasources"][0]["uid"] == dashboard()["panels"][0]["datasource"]["uid"]


def test_alert_rules_name_exported_metrics_too() -> None:
    rules = (DEPLOY.parent / "prometheus" / "alerts.yml").read_text()
    assert set(METRIC.findall(rules)) <= exported()
