"""The benchmark suite's bookkeeping: profile summaries, goals and the generated page."""

from __future__ import annotations

from typing import Any

import pytest

from bench import goals, profiling, report
from bench.labels import CEILING_AIOKAFKA, CRMSTREAM, NAIVE, QUIXSTREAMS


def _rate(median: float) -> dict[str, Any]:
    return {"median": median, "min": median * 0.9, "max": median * 1.1, "ratio_to_crmstream": 1.0}


def _results() -> dict[str, dict[str, Any]]:
    machine = {"cpu": "Test CPU", "cores": 2, "memory_gb": 8.0, "python": "3.11.7"}
    throughput = {
        "command": "crmstream bench full --events 1000 --runs 3",
        "measured_at": "2026-01-01T00:00:00+00:00",
        "machine": machine,
        "what": "everything",
        "events": 1000,
        "population": 300,
        "runs": 3,
        "unavailable": {"bytewax (a pipeline per batch)": "not installable here"},
        "redis_bytes_per_profile": {"median_bytes": 900, "p99_bytes": 2500},
    }
    return {
        "profiles": {
            **throughput,
            "scenario": "profiles",
            "events_per_second": {
                CRMSTREAM: _rate(60_000),
                CEILING_AIOKAFKA: _rate(100_000),
                QUIXSTREAMS: _rate(80_000),
            },
        },
        "full": {
            **throughput,
            "scenario": "full",
            "events_per_second": {CRMSTREAM: _rate(5_000), NAIVE: _rate(1_000)},
            "profile": profiling.summarise(
                [
                    "main (w.py:1);SegmentStage.on_batch (s.py:2);Condition.evaluate (e.py:3) 6",
                    "main (w.py:1);Ingest.decode (i.py:9);Decoder.decode (d.py:4) 3",
                    "main (w.py:1);Ingest.decode (i.py:9);Decoder.decode (d.py:5) 1",
                ]
            ),
        },
        "latency": {
            "command": "crmstream bench latency --seconds 30",
            "machine": machine,
            "max_rate": 4000,
            "levels": [
                {
                    "load": 0.5,
                    "rate": 2000,
                    "latency": {"count": 10, "p50_ms": 40, "p95_ms": 90, "p99_ms": 300},
                    "timer_lateness": {"count": 0},
                }
            ],
        },
    }


def test_a_profile_is_summed_by_stage_and_by_function_with_lines_merged() -> None:
    profile = _results()["full"]["profile"]
    assert profile["samples"] == 10
    assert profile["stages"]["segment stage"] == pytest.approx(0.6)
    assert profile["stages"]["decode and validate"] == pytest.approx(0.4)
    assert profile["self"][0] == {"function": "Condition.evaluate (e.py)", "share": 0.6}
    # Two lines of one function are one row.
    assert profile["self"][1] == {"function": "Decoder.decode (d.py)", "share": 0.4}


def test_each_goal_is_met_missed_or_not_measured() -> None:
    checked = {goal.goal: goal for goal in goals.check(_results())}
    met = {name: goal.met for name, goal in checked.items()}
    assert met == {
        "`profiles` ≥ 50% of the aiokafka ceiling": True,  # 60k of 100k
        "`full` ≥ 10x the naive baseline": False,  # 5x
        "ahead of the quixstreams peer": False,
        "p99 event → trigger ≤ 250 ms at 50% load": False,
        "Redis ≤ 2 KB per typical profile": True,
        "worker RSS flat (±10%) from 100k to 1M events": None,
    }
    assert checked["`full` ≥ 10x the naive baseline"].measured == "5,000 vs 1,000 ev/s: 5.00x"


def test_the_page_names_the_machine_the_commands_the_misses_and_what_did_not_run() -> None:
    page = report.markdown(_results(), with_plot=False)
    assert "Test CPU, 2 cores" in page
    assert "`crmstream bench full --events 1000 --runs 3`" in page
    assert "| `full` ≥ 10x the naive baseline | 5,000 vs 1,000 ev/s: 5.00x | **missed** |" in page
    assert "| bytewax (a pipeline per batch) | not run: not installable here | | |" in page
    assert "| segment stage | 60.0% |" in page
    assert "| 50% | 2,000 | 10 | 40 | 90 | 300 |" in page
