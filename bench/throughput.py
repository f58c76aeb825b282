"""The throughput scenarios: ingest, profiles and full, each beside its ceiling and baselines.

Every contender drains the same pre-loaded topics, ``runs`` times, in turn (one of
each, then again), so a noisy neighbour on a shared machine falls on all of them
alike; medians and spreads are reported, and each contender's median as a ratio
to crmstream's.
"""

from __future__ import annotations

import statistics
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from bench import profiling
from bench.contenders import ceiling_aiokafka, ceiling_confluent, crmstream, naive, peer
from bench.cost import Cost
from bench.harness import FULL, INGEST, PROFILES, Workspace, summary
from bench.labels import (
    BYTEWAX,
    CEILING_AIOKAFKA,
    CEILING_CONFLUENT,
    CRMSTREAM,
    JOURNEYS_ON,
    NAIVE,
    QUIXSTREAMS,
)
from bench.memory import profile_bytes
from crmstream.errors import BenchError
from rules import PACKAGED_JOURNEYS, PACKAGED_SHOP_CONFIGS
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


def against_label(tree: Path) -> str:
    """The contender a checkout's workers are shown as: its commit."""
    commit = subprocess.run(
        ["git", "-C", str(tree), "rev-parse", "--short", "HEAD"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    return f"{CRMSTREAM} @ {commit}"


def _journeys_on() -> dict[str, str]:
    """A shop folder whose default runs every pack journey, for the workers' environment."""
    folder = Path(tempfile.mkdtemp(prefix="crmstream-bench-shops-"))
    names = ", ".join(sorted(path.stem for path in PACKAGED_JOURNEYS.glob("*.yaml")))
    default = (PACKAGED_SHOP_CONFIGS / "default.yaml").read_text(encoding="utf-8")
    kept = [line for line in default.splitlines() if not line.startswith("journeys:")]
    (folder / "default.yaml").write_text("\n".join([*kept, f"journeys: [{names}]", ""]))
    return {"CRMSTREAM_PROFILES_SHOP_CONFIG_DIR": str(folder)}


def run(
    scenario: Scenario,
    events: int,
    runs: int,
    customers_per_shop: int,
    against: Path | None = None,
    *,
    journeys: bool = False,
) -> dict[str, Any]:
    """Every contender over the same pre-loaded events, taken in turn ``runs`` times;
    ``against``: another checkout's workers too, in the same turns; ``journeys``: these
    workers with the pack journeys on too (every shop runs them)."""
    ours_too = {against_label(against): against} if against is not None else {}
    variants = {JOURNEYS_ON: _journeys_on()} if journeys else {}
    costed = (CRMSTREAM, *ours_too, *variants)
    rates: dict[str, list[float]] = {name: [] for name in (*costed, *scenario.others)}
    costs: dict[str, list[Cost]] = {name: [] for name in costed}
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
                    if name in costs:
                        keep = n == 0 and name == CRMSTREAM and scenario.sink != INGEST
                        done = crmstream(space, scenario.sink, settle=scenario.settle, keep=keep,
                                         tree=ours_too.get(name),
                                         extra_env=variants.get(name))  # fmt: skip
                        rate = done.rate
                        costs[name].append(done.cost)
                        if keep:
                            result["redis_bytes_per_profile"] = profile_bytes(
                                space.client, done.keys
                            )
                            space.forget(done.keys.pattern())
                    else:
                        rate = _OTHERS[name](space)
                except BenchError as exc:
                    if name in costs:
                        raise
                    unavailable[name] = str(exc)
                    print(f"  {name}: {exc}", flush=True)
                    continue
                measured.append(rate)
                line = f"  run {n + 1}/{runs}  {name:<46} {rate:>10,.0f} ev/s"
                if name in costs:
                    cost = costs[name][-1]
                    line += (f"  worker {cost.worker_us:,.0f} µs/ev, Redis {cost.redis_us:,.0f}"
                             f" µs/ev, {cost.fcall_calls:.3f} calls/ev")  # fmt: skip
                print(line, flush=True)
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
        "cost_per_event": {name: _median_cost(values) for name, values in costs.items() if values},
        "unavailable": unavailable,
    }
    return result


def _median_cost(costs: list[Cost]) -> dict[str, float]:
    """The median of each figure over the runs (each run's own figures kept too)."""
    fields = [cost.as_dict() for cost in costs]
    medians = {key: statistics.median(f[key] for f in fields) for key in fields[0]}
    return {**medians, "runs": fields}  # type: ignore[dict-item]  # the runs beside the medians
