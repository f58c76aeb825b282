"""Latency: from an event's ``time`` to its trigger on the triggers topic, under steady load.

The load is live storefront traffic at a fixed share (25%, 50%, 75%) of the highest
rate the ``full`` scenario measured, made and checked before the level starts
(bench/load.py) and stamped with the clock as it leaves. A trigger's arrival is its
broker timestamp (set when the relay produced it); latency is that minus the ``time`` of
the event that caused it.

A bench rule beside the pack, "cart added, no order within 5 s", measures in the
same run how late a timer fires: its trigger's arrival minus its deadline. Quiet hours
are taken out of the pack's copy, or the figures would depend on the time of day in
Shanghai when the benchmark runs. Every trigger is counted: the load stops, then the
worker drains what it still holds before the reader stops.

Each level starts with a warm-up at its rate, not counted: the figures are those of a
worker and a storefront producer that are running already, as they are in production for
days, not of their first seconds (a worker's first batches load its rules' programs and
Functions; a producer's first records wait for its connection). The warm-up outlasts the
worker's window of measured write lateness (``timer_allowance_window_s``) by
``WARM_UP_S``: on this shared machine the worker's first second starves the broker, whose
appends then come up to a second and a half late, and the worker rightly holds its
allowance up for a window after. Counting from the first minute would measure that start
again in every level, not the steady load the levels are about.

Each level also says what it cost while counted (bench/steady.py): the worker's and
Redis's CPU per event, which together say how much room their turn-taking had left, and
how the worker's batches spent their time.

With ``--against``, another checkout's worker takes each load level too, right after
this one's: the two versions' figures come from the same run.
"""

from __future__ import annotations

import contextlib
import statistics
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import orjson
import yaml
from confluent_kafka import Consumer
from redis.exceptions import RedisError

from bench import steady
from bench.contenders import start
from bench.harness import FULL, Workspace
from bench.load import prepare, stamp_now
from bench.steady import Reading
from crmstream.errors import BenchError
from crmstream.settings import Settings
from handlers.triggers.samples import rule_samples
from rules import PACKAGED_RULES
from rules.loader import load_rules
from storefront.publisher import Publisher
from streams.cli.child_worker import stop_worker
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
_READY_LIMIT_S: Final = 60.0
_TAIL_LIMIT_S: Final = 120.0  # an overloaded worker's backlog, drained before counting
_TIMER_S: Final = 5  # the bench timer's window: the last ones fall due this much later
WARM_UP_S: Final = 5.0


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


def at_rate(rate: float, seconds: float, rules: Path, tree: Path | None = None) -> dict[str, Any]:
    """One load level, on topics and a key space of its own; ``tree``: the worker runs
    another checkout's code."""
    with Workspace.open("latency") as space:
        keys = space.key_space()
        env = space.worker_env(keys, FULL, CRMSTREAM_TRIGGERS_RULES_DIR=str(rules))
        reader = _Triggers(space.settings, space.topics.triggers)
        reader.start()
        worker = None
        try:
            worker = start(space.logs / "latency.log", env, None, tree)
            port = int(env["CRMSTREAM_WORKER_WEB_PORT"])
            _wait_ready(port)
            pid = worker.pid
            sent, offered_s, counted_from_ms, readings = _offer(
                space.settings, rate, seconds, lambda: steady.read(space.client, pid, port)
            )
            # Until every event is taken and every decision relayed, and the last timers due.
            tail = time.monotonic() + _TAIL_LIMIT_S
            while time.monotonic() < tail and not (
                space.taken(keys) >= sent and space.settled(keys)
            ):
                time.sleep(0.2)
            time.sleep(_TIMER_S + 2)
        finally:
            reader.stopping.set()
            reader.join()
            if worker is not None:
                stop_worker(worker)
    return {
        "rate": sent / offered_s,
        "events": sent,
        "seconds": offered_s,
        **measured(reader.seen, classes_of(rules), counted_from_ms),
        "steady": steady.between(*readings),
    }


def classes_of(rules: Path) -> dict[str, str]:
    """Rule id → when it is decided (rules/ordering.py): on arrival, in event-time order,
    by the clock."""
    return {entry.rule.id: entry.ordering.name for entry in load_rules(rules, rule_samples).rules}


def measured(
    seen: Sequence[tuple[int, dict[str, Any]]], classes: dict[str, str], from_ms: int = 0
) -> dict[str, Any]:
    """On-event triggers: their arrival less their event's time, in all and per class;
    absence timers: their arrival less their deadline (an absence trigger's time). Only
    triggers whose time is ``from_ms`` or later count (the warm-up's do not)."""
    latency: list[float] = []
    by_class: dict[str, list[float]] = {}
    lateness: list[float] = []
    for broker_ms, trigger in seen:
        at_ms = _ms(trigger["time"])
        if at_ms < from_ms:
            continue
        delay = broker_ms - at_ms
        rule = trigger["data"]["rule"]
        if rule == "bench-timer":
            lateness.append(delay)
            continue
        latency.append(delay)
        by_class.setdefault(classes.get(rule, "unknown"), []).append(delay)
    return {
        "latency": percentiles(latency),
        "latency_by_class": {name: percentiles(found) for name, found in sorted(by_class.items())},
        "timer_lateness": percentiles(lateness),
    }


def _wait_ready(port: int) -> None:
    """Until the worker says it is ready (partitions assigned, Redis answering)."""
    deadline = time.monotonic() + _READY_LIMIT_S
    while time.monotonic() < deadline:
        url = f"http://127.0.0.1:{port}/readyz"
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as reply:
            if reply.status == 200:
                return
        time.sleep(0.5)
    raise BenchError(f"the worker was not ready within {_READY_LIMIT_S:.0f} s")


def _offer(
    settings: Settings, rate: float, seconds: float, take: Callable[[], Reading]
) -> tuple[int, float, int, tuple[Reading, Reading]]:
    """Events sent at ``rate`` for the warm-up (the allowance window and ``WARM_UP_S``) and
    then ``seconds``: how many, over how long, when the warm-up ended (epoch ms), and
    ``take``'s readings then and at the end of the load."""
    warm_up_s = WARM_UP_S + settings.triggers.timer_allowance_window_s
    sent = 0
    counted: list[Reading | OSError | RedisError | ValueError] = []

    def warm_up_over() -> None:
        try:
            counted.append(take())
        except (OSError, RedisError, ValueError) as exc:  # raised by the sender's thread
            counted.append(exc)

    # Taken beside the sender, not in its loop: a reading must not hold the pace up.
    at_warm = threading.Timer(warm_up_s, warm_up_over)
    with Publisher(settings) as publisher:
        # Made before it is offered (bench/load.py), with some to spare: a sender that
        # falls behind its rate sends fewer, never more.
        load = prepare(publisher, int(rate * (warm_up_s + seconds) * 1.05) + 1_000)
        publisher.connect()
        pacer, started = Pacer(rate), time.monotonic()
        counted_from_ms = int((time.time() + warm_up_s) * 1000)
        at_warm.start()
        for event in load:
            publisher.publish_raw(event.topic, event.key, event.stamped(stamp_now()))
            sent += 1
            pacer.wait(sent)
            if time.monotonic() - started > warm_up_s + seconds:
                break
        elapsed = time.monotonic() - started
        at_warm.cancel()  # a load that ran out before its warm-up did has no stretch
        at_warm.join()
        if not counted:
            raise BenchError("the load ran out before its warm-up ended: nothing was counted")
        first = counted[0]
        if not isinstance(first, Reading):
            raise BenchError(f"the worker could not be read after the warm-up: {first}") from first
        last = take()
    return sent, elapsed, counted_from_ms, (first, last)


def bench_rules(folder: Path, pack: Path = PACKAGED_RULES) -> Path:
    """The rule pack without quiet hours (which would hold triggers by the time of day the
    benchmark runs), and the bench timer beside it. ``pack``: another checkout's, for its
    workers (its rules may be written in a form of its own)."""
    folder.mkdir(parents=True, exist_ok=True)
    for source in pack.glob("*.yaml"):
        rule = yaml.safe_load(source.read_text(encoding="utf-8"))
        rule.get("limits", {}).pop("quiet_hours", None)
        (folder / source.name).write_text(yaml.safe_dump(rule, allow_unicode=True))
    (folder / "bench-timer.yaml").write_text(BENCH_TIMER)
    return folder


def run(max_rate: float, seconds: float, logs: Path, against: Path | None = None) -> dict[str, Any]:
    rules = bench_rules(logs / "rules")
    if against is not None:
        their_rules = bench_rules(logs / "their-rules", against / "rules" / "pack")
    levels, compared = [], []
    for load in LOADS:
        print(f"latency: {load:.0%} of {max_rate:,.0f} ev/s for {seconds:.0f} s", flush=True)
        levels.append({"load": load, **at_rate(max_rate * load, seconds, rules)})
        if against is not None:
            print(f"latency: the same, by {against}", flush=True)
            compared.append(
                {"load": load, **at_rate(max_rate * load, seconds, their_rules, against)}
            )
    result: dict[str, Any] = {"max_rate": max_rate, "levels": levels}
    if against is not None:
        result["against"] = {"tree": str(against), "levels": compared}
    return result
