"""A throughput scenario's results keep the runs before them: each run adds one row per
crmstream version it measured (this checkout's, and any compared with --against), so
that every step shows what it bought (BENCHMARKS.md lists them)."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.labels import CRMSTREAM, JOURNEYS_ON
from bench.record import read_results

_CHECKOUT = Path(__file__).parents[1]


def this_version() -> str:
    done = subprocess.run(
        ["git", "-C", str(_CHECKOUT), "rev-parse", "--short", "HEAD"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    commit = done.stdout.strip() or "unknown"
    dirty = subprocess.run(
        ["git", "-C", str(_CHECKOUT), "diff", "--quiet", "HEAD"], check=False
    ).returncode
    return f"{commit}{'+changes' if dirty else ''}"


def extended(name: str, fields: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows before this run, then this run's."""
    before = list(read_results().get(name, {}).get("history", []))
    costs: dict[str, Any] = fields.get("cost_per_event", {})
    rates: dict[str, Any] = fields.get("events_per_second", {})
    now = datetime.now(UTC).isoformat(timespec="seconds")
    rows = []
    for label, cost in costs.items():
        if label == CRMSTREAM:
            version = this_version()
        elif label == JOURNEYS_ON:
            version = f"{this_version()}, journeys on"
        else:
            version = label.split(" @ ", 1)[1]
        rows.append(
            {
                "measured_at": now,
                "version": version,
                "events_per_second": rates[label]["median"],
                **{key: value for key, value in cost.items() if key != "runs"},
            }
        )
    return [*before, *rows]
