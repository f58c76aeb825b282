"""The throughput scenarios: ingest, profiles and full, each beside its ceiling and baselines.

Every contender drains the same pre-loaded topics, ``runs`` times, in turn (one of
each, then again), so a noisy neighbour on a shared machine falls on all of them
alike; medians and spreads are reported, and each contender's median as a ratio
to crmstream's.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from bench import profiling
from bench.contenders import ceiling_aiokafka, ceiling_confluent, crmstream, naive, peer
from bench.harness import FULL, INGEST, PROFILES, Workspace, summary
from bench.labels import (
    BYTEWAX,
    CEILING_AIOKAFKA,
    CEILING_CONFLUENT,
    CRMSTREAM,
    NAIVE,
    QUIXSTREAMS,
)
from bench.memory import profile_bytes
from crmstream.errors import BenchError
from storefront.simulator import SHOPS

_OTHERS: Final[dict[str, Callable[[Workspace], float]]] = {
    CEILING_CONFLUENT: ceiling_confluent,
    CEILING_AIOKAFKA: ceiling_aiokafka,
    NAIVE: naive,
    QUIXSTREAMS: lambda space: peer(space, "quix_counters"),
    BYTEWAX: lambda space: peer(space, "bytewax_counters"),
}


@dataclass(frozen=True)
class Scenario:
    name: str
    sink: str | None
    what: str
    others: tuple[str, ...]
    settle: bool = False  # also wait until every trigger and segment change is relayed
    profiled: bool = False


_BASELINES: Final = (CEILING_CONFLUENT, CEILING_AIOKAFKA, NAIVE, QUIXSTREAMS, BYTEWAX)
SCENARIOS: Final = {
    "ingest": Scenario(
        "ingest",
        INGEST,
        "read, decode and validate every event, count it per stream; no profile",
        (CEILING_CONFLUENT, CEILING_AIOKAFKA),
    ),
    "profiles": Scenario(
        "profiles", PROFILES, "validate, then update each customer's live profile", _BASELINES
    ),
    "full": Scenario(
        "full",
        FULL,
        "profiles, the whole rule pack and every segment; timed until every trigger and "
        "segment change is relayed to Kafka",
        _BASELINES,
        settle=True,
        profiled=True,
    ),
}


def run(scenario: Scenario, events: int, runs: int, customers_per_shop: int) -> dict[str, Any]:
    rates: dict[str, list[float]] = {CRMSTREAM: [], **{name: [] for name in scenario.others}}
    unavailable: dict[str, str] = {}
    result: dict[str, Any] = {"scenario": scenario.name, "what": scenario.what}
    with Workspace.open(scenario.name) as space:
        print(f"{scenario.name}: pre-loading {events:,} events", flush=True)
        space.preload(events, customers_per_shop)
        for n in range(runs):
            for name, measured in rates.items():
                if name in unavailable:
                    continue
                try:
                    if name == CRMSTREAM:
                        keep = n == 0 and scenario.sink != INGEST
                        done = crmstream(space, scenario.sink, settle=scenario.settle, keep=keep)
                        rate = done.rate
                        if keep:
                            result["redis_bytes_per_profile"] = profile_bytes(
                                space.client, done.keys
                            )
                            space.forget(done.keys.pattern())
                    else:
                        rate = _OTHERS[name](space)
                except BenchError as exc:
                    if name == CRMSTREAM:
                        raise
                    unavailable[name] = str(exc)
                    print(f"  {name}: {exc}", flush=True)
                    continue
                measured.append(rate)
                print(f"  run {n + 1}/{runs}  {name:<46} {rate:>10,.0f} ev/s", flush=True)
        if scenario.profiled:
            print(f"{scenario.name}: one more crmstream run under py-spy", flush=True)
            try:
                result["profile"] = profiling.profile(space, scenario.sink)
            except BenchError as exc:
                result["profile"] = {"unavailable": str(exc)}
    ours = statistics.median(rates[CRMSTREAM])
    result |= {
        "events": events,
        "population": customers_per_shop * len(SHOPS),
        "runs": runs,
        "events_per_second": {
            name: {**summary(values), "ratio_to_crmstream": statistics.median(values) / ours}
            for name, values in rates.items()
            if values
        },
        "unavailable": unavailable,
    }
    return result
