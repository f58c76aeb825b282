"""Latency: from an event's ``time`` to its trigger on the triggers topic, under steady load.

The load is live storefront traffic at a fixed share (25%, 50%, 75%) of the highest
rate the ``full`` scenario measured, each event stamped with the clock as it
leaves. A trigger's arrival is its broker timestamp (set when the relay produced
it); latency is that minus the ``time`` of the event that caused it. Triggers held
for the customer's quiet hours are left out (held on purpose, and counted).

A bench rule beside the pack, "cart added, no order within 5 s", measures in the
same run how late a timer fires: its trigger's arrival minus its deadline.
"""

from __future__ import annotations

import shutil
import statistics
import threading
import time
import uuid
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import orjson
from confluent_kafka import Consumer

from bench.harness import FULL, Workspace
from crmstream.client.publisher import Publisher, encode
from crmstream.client.simulator import SimulationConfig, Simulator
from crmstream.settings import Settings
from streams.cli.child_worker import start_worker, stop_worker
from streams.cli.pacing import Pacer

LOADS: Final = (0.25, 0.50, 0.75)
BENCH_TIMER: Final = """
id: bench-timer
version: 1
description: cart added, no order within five seconds (timer lateness)
when: {absence: {after: cart.item_added, missing: order.placed, within: 5s}}
then: {channels: [service_desk], template: bench}
limits: {transactional: true}
"""
_WARM_UP_S: Final = 8.0  # the group joins and the first fetch, before the clock starts
_TAIL_S: Final = 10.0  # the last timers fall due, the relay catches up
_HELD_MS: Final = 60_000  # a trigger this late was held for quiet hours, on purpose


class _Triggers(threading.Thread):
    """Reads the triggers topic beside the load: (broker timestamp, trigger) pairs."""

    def __init__(self, settings: Settings, topic: str) -> None:
        super().__init__(daemon=True)
        self.consumer = Consumer(
            {
                **settings.kafka.librdkafka(),
                "group.id": f"bench-{uuid.uuid4().hex}",
                "auto.offset.reset": "earliest",
            }
        )
        self.consumer.subscribe([topic])
        self.seen: list[tuple[int, dict[str, Any]]] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            for message in self.consumer.consume(500, 0.2):
                value = message.value()
                if message.error() is None and value:
                    self.seen.append((message.timestamp()[1], orjson.loads(value)))
        self.consumer.close()


def percentiles(values: Sequence[float]) -> dict[str, float]:
    if len(values) < 2:
        return {"count": len(values)}
    cuts = statistics.quantiles(values, n=100)
    return {
        "count": len(values),
        "p50_ms": cuts[49],
        "p95_ms": cuts[94],
        "p99_ms": cuts[98],
        "max_ms": max(values),
    }


def _ms(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp() * 1000)


def at_rate(rate: float, seconds: float, rules: Path) -> dict[str, Any]:
    """One load level, on topics and a key space of its own."""
    with Workspace.open("latency") as space:
        keys = space.key_space()
        env = space.worker_env(keys, FULL, CRMSTREAM_TRIGGERS_RULES_DIR=str(rules))
        reader = _Triggers(space.settings, space.topics.triggers)
        reader.start()
        worker = start_worker(space.logs / "latency.log", env)
        try:
            time.sleep(_WARM_UP_S)
            sent = _offer(space.settings, rate, seconds)
            time.sleep(_TAIL_S)
        finally:
            reader.stopping.set()
            reader.join()
            stop_worker(worker)
    latency, lateness, held = [], [], 0
    for broker_ms, trigger in reader.seen:
        delay = broker_ms - _ms(trigger["time"])
        if trigger["data"]["rule"] == "bench-timer":
            lateness.append(delay)
        elif delay > _HELD_MS:
            held += 1
        else:
            latency.append(delay)
    return {
        "rate": rate,
        "events": sent,
        "seconds": seconds,
        "latency": percentiles(latency),
        "timer_lateness": percentiles(lateness),
        "held_for_quiet_hours": held,
    }


def _offer(settings: Settings, rate: float, seconds: float) -> int:
    events = Simulator(SimulationConfig(seed=9, customers_per_shop=2000, live=True)).events()
    pacer, sent = Pacer(rate), 0
    with Publisher(settings) as publisher:
        started = time.monotonic()
        for event in events:
            publisher.publish_json(encode(event))
            sent += 1
            pacer.wait(sent)
            if time.monotonic() - started > seconds:
                break
    return sent


def run(max_rate: float, seconds: float, logs: Path) -> dict[str, Any]:
    rules = logs / "rules"
    shutil.copytree(Settings().triggers.rules_dir, rules, dirs_exist_ok=True)
    (rules / "bench-timer.yaml").write_text(BENCH_TIMER)
    levels = []
    for load in LOADS:
        print(f"latency: {load:.0%} of {max_rate:,.0f} ev/s for {seconds:.0f} s", flush=True)
        levels.append({"load": load, **at_rate(max_rate * load, seconds, rules)})
    return {"max_rate": max_rate, "levels": levels}
