"""The suite's goals, checked against whatever results are there (ratios from one run)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bench.labels import CEILING_AIOKAFKA, CRMSTREAM, NAIVE, QUIXSTREAMS

_TYPICAL_PROFILE_BYTES = 2048
P99_MS_AT_HALF_LOAD = 250.0
_RSS_DRIFT = 0.10


@dataclass(frozen=True)
class Goal:
    goal: str
    measured: str
    met: bool | None  # None: not measured yet


def check(results: Mapping[str, Mapping[str, Any]]) -> list[Goal]:
    results = {name: result for name, result in results.items() if "failed" not in result}
    return [
        _ratio(
            results, "profiles", CEILING_AIOKAFKA, 0.5, "`profiles` ≥ 50% of the aiokafka ceiling"
        ),
        _ratio(results, "full", NAIVE, 10.0, "`full` ≥ 10x the naive baseline", as_multiple=True),
        _ratio(
            results, "profiles", QUIXSTREAMS, 1.0, "ahead of the quixstreams peer", as_multiple=True
        ),
        _latency(results.get("latency")),
        _profile_bytes(results),
        _rss(results.get("memory")),
    ]


def _rates(results: Mapping[str, Mapping[str, Any]], scenario: str) -> Mapping[str, Any]:
    rates: Mapping[str, Any] = results.get(scenario, {}).get("events_per_second", {})
    return rates


def _ratio(
    results: Mapping[str, Mapping[str, Any]],
    scenario: str,
    other: str,
    needed: float,
    goal: str,
    *,
    as_multiple: bool = False,
) -> Goal:
    """crmstream / other ≥ needed, said as a multiple (``as_multiple``) or as a share."""
    rates = _rates(results, scenario)
    if CRMSTREAM not in rates or other not in rates:
        return Goal(goal, "not measured", None)
    ours, theirs = rates[CRMSTREAM]["median"], rates[other]["median"]
    ratio = ours / theirs
    if as_multiple:
        text = f"{ours:,.0f} vs {theirs:,.0f} ev/s: {ratio:.2f}x"
    else:
        text = f"{ours:,.0f} of {theirs:,.0f} ev/s: {ratio:.1%}"
    return Goal(goal, text, ratio >= needed)


def _latency(latency: Mapping[str, Any] | None) -> Goal:
    goal = f"p99 event → trigger ≤ {P99_MS_AT_HALF_LOAD:.0f} ms at 50% load"
    half = next((lv for lv in (latency or {}).get("levels", []) if lv["load"] == 0.5), None)
    if half is None or "p99_ms" not in half["latency"]:
        return Goal(goal, "not measured", None)
    p99 = half["latency"]["p99_ms"]
    return Goal(goal, f"{p99:,.0f} ms at {half['rate']:,.0f} ev/s", p99 <= P99_MS_AT_HALF_LOAD)


def _profile_bytes(results: Mapping[str, Mapping[str, Any]]) -> Goal:
    goal = "Redis ≤ 2 KB per typical profile"
    for source in ("memory", "full", "profiles"):
        measured = results.get(source, {}).get("redis_bytes_per_profile")
        if measured:
            typical = measured["median_bytes"]
            text = f"{typical:,.0f} B median, {measured['p99_bytes']:,.0f} B p99 (`{source}`)"
            return Goal(goal, text, typical <= _TYPICAL_PROFILE_BYTES)
    return Goal(goal, "not measured", None)


def _rss(memory: Mapping[str, Any] | None) -> Goal:
    goal = "worker RSS flat (±10%) from 100k to 1M events"
    if not memory:
        return Goal(goal, "not measured", None)
    rss = memory["worker_rss_bytes"]
    first, last = next(iter(rss.values())), list(rss.values())[-1]
    marks = list(rss)
    text = (
        f"{first / 2**20:,.0f} MiB at {int(marks[0]):,} events, "
        f"{last / 2**20:,.0f} MiB at {int(marks[-1]):,}"
    )
    return Goal(goal, text, abs(memory["rss_growth"]) <= _RSS_DRIFT)
