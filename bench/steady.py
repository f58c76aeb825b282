"""What a latency level cost while it was counted: CPU per event on each side of the wire,
and how the worker's batches spent their time (the worker's own metrics).

A worker and its Redis take turns on a batch: the worker prepares a call, waits for
Redis to run it, and goes on. So the two CPU figures add up, and their sum times the rate
is how much of each second that turn-taking fills. Near one second per second there is no
room left for a burst, and latency grows with every one; this is what tells a level that
is short of capacity from one that waits for something else. The batches' own figures
say where the turns go: how many events a batch carried, how much of the time a batch
was in hand, and how long it waited on Redis in each stage.

Two readings bracket the counted stretch of a level: the end of its warm-up and the end
of its load. What a worker still holds when the load stops (a backlog at 75%) is drained
after the second reading: its cost is not in the figures, which are of the load as it
came.
"""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.parser import text_string_to_metric_families

from bench.cost import Snapshot, snapshot
from bench.cost import between as cost_between
from crmstream import metrics
from handlers.redis_client import SyncRedisClient


def _name(metric: MetricWrapperBase) -> str:
    (family,) = metric.describe()
    return str(family.name)


# The worker's own metrics (crmstream/metrics.py), by the names its page gives them.
_BATCHES: Final = f"{_name(metrics.BATCH_SECONDS)}_count"
_BATCH_SECONDS: Final = f"{_name(metrics.BATCH_SECONDS)}_sum"
_EVENTS: Final = f"{_name(metrics.BATCH_SIZE)}_sum"
_REDIS_CALLS: Final = f"{_name(metrics.REDIS_SECONDS)}_count"
_REDIS_SECONDS: Final = f"{_name(metrics.REDIS_SECONDS)}_sum"

Samples = Mapping[tuple[str, str], float]  # (sample name, its stage label or "") → value


@dataclass(frozen=True)
class Reading:
    at: float  # monotonic seconds
    cost: Snapshot
    samples: Samples


def samples_of(text: str) -> dict[tuple[str, str], float]:
    """The batch and Redis-call samples of a metrics page."""
    wanted = {_BATCHES, _BATCH_SECONDS, _EVENTS, _REDIS_CALLS, _REDIS_SECONDS}
    found: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in wanted:
                key = (sample.name, sample.labels.get("stage", ""))
                found[key] = found.get(key, 0.0) + sample.value
    return found


def read(client: SyncRedisClient, pid: int, port: int) -> Reading:
    """The worker's CPU and metrics, and Redis's CPU, now."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
        text = reply.read().decode()
    return Reading(time.monotonic(), snapshot(client, [pid]), samples_of(text))


def between(first: Reading, last: Reading) -> dict[str, Any]:
    """What the stretch between two readings cost, per event and per batch."""

    def grown(name: str, stage: str = "") -> float:
        return last.samples.get((name, stage), 0.0) - first.samples.get((name, stage), 0.0)

    # The stages as the worker labels its round trips, those that made any meanwhile.
    stages = [
        stage for name, stage in last.samples if name == _REDIS_CALLS and grown(_REDIS_CALLS, stage)
    ]
    seconds = max(last.at - first.at, 1e-9)
    events = max(round(grown(_EVENTS)), 1)
    batches = max(grown(_BATCHES), 1.0)
    cost = cost_between(first.cost, last.cost, events)
    return {
        "seconds": seconds,
        "events": events,
        "worker_us_per_event": cost.worker_us,
        "redis_us_per_event": cost.redis_us,
        # Seconds of (worker + Redis) CPU per second: near 1, turn-taking has no room left.
        "turns_share": (cost.worker_us + cost.redis_us) * events / 1e6 / seconds,
        "events_per_batch": events / batches,
        "batch_share": grown(_BATCH_SECONDS) / seconds,
        "redis_calls_per_batch": {stage: grown(_REDIS_CALLS, stage) / batches for stage in stages},
        "redis_ms_per_batch": {
            stage: grown(_REDIS_SECONDS, stage) * 1000 / batches for stage in stages
        },
    }
