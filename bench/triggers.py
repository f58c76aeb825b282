"""What the rules cost, how fast a trigger follows its event, how late a timer fires.

    python -m bench.triggers [--events 100000] [--seconds 30]

1. Throughput, on the same pre-loaded topics: a worker that keeps profiles only,
   then one with the whole rule pack, each with a Redis key space of its own.
   The rate runs from the first event taken until every event is taken and
   every decision is made and relayed (outbox and put-off entries empty).
2. Latency at half the rule worker's rate: live storefront traffic (stamped with
   the clock as it leaves) for --seconds; for each trigger caused by an event,
   the broker's timestamp of the trigger minus the event's time.
3. Timer lateness in the same run: a bench rule "cart added, no order within 5s"
   beside the pack; the broker's timestamp of each such trigger minus its deadline.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import redis
from confluent_kafka import Consumer

from bench.decode import cpu_model, write_results
from bench.profiles import isolated, worker_env
from crmstream.admin import create_topics, delete_topics
from crmstream.client.publisher import Publisher, encode
from crmstream.client.simulator import SimulationConfig, Simulator
from crmstream.settings import Settings
from crmstream.topics import TopicNames
from handlers.keys import Keys
from handlers.redis_client import connect_sync
from streams.cli.child_worker import start_worker, stop_worker
from streams.cli.pacing import Pacer

PIPELINE = "handlers.pipeline:ProfilesAndTriggers.from_settings"
PROFILES_ONLY = "handlers.profile.stage:ProfileStage.from_settings"
BENCH_TIMER = """
id: bench-timer
version: 1
description: cart added, no order within five seconds (timer lateness)
when: {absence: {after: cart.item_added, missing: order.placed, within: 5s}}
then: {channels: [service_desk], template: bench}
limits: {transactional: true}
"""


def _backlog_done(client: redis.Redis, keys: Keys, count: int) -> bool:
    taken = sum(int(v) for v in client.hgetall(keys.flow).values())
    if taken < count:
        return False
    pipe = client.pipeline(transaction=False)
    for base in keys.trigger_shards():
        for waiting in keys.in_flight(base):
            pipe.zcard(waiting)
        pipe.xlen(keys.outbox(base))
    return not any(pipe.execute())


def throughput(settings: Settings, sink: str, count: int, rules: Path, logs: Path) -> float:
    keys = Keys(f"{settings.redis.key_prefix}-{uuid.uuid4().hex[:6]}")
    env = {
        **worker_env(settings, f"{keys.prefix}-app", sink),
        "CRMSTREAM_REDIS_KEY_PREFIX": keys.prefix,
        "CRMSTREAM_TRIGGERS_RULES_DIR": str(rules),
    }
    client = connect_sync(settings.redis)
    worker = start_worker(logs / f"{sink.split(':', maxsplit=1)[0]}.log", env)
    first_at = None
    try:
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            if worker.poll() is not None:
                raise RuntimeError(f"the worker exited; see {logs}")
            taken = sum(int(v) for v in client.hgetall(keys.flow).values())
            now = time.perf_counter()
            if taken and first_at is None:
                first_at = now
            if first_at is not None and _backlog_done(client, keys, count):
                return count / (now - first_at)
            time.sleep(0.05)
        raise RuntimeError("not done within 900s")
    finally:
        stop_worker(worker)
        for key in client.scan_iter(match=keys.pattern(), count=1000):
            client.unlink(key)
        client.close()


class _Triggers(threading.Thread):
    def __init__(self, settings: Settings) -> None:
        super().__init__(daemon=True)
        self.consumer = Consumer(
            {
                **settings.kafka.librdkafka(),
                "group.id": f"bench-{uuid.uuid4().hex}",
                "auto.offset.reset": "earliest",
            }
        )
        self.consumer.subscribe([TopicNames.from_settings(settings.topics).triggers])
        self.seen: list[tuple[int, dict[str, Any]]] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            for message in self.consumer.consume(500, 0.2):
                value = message.value()
                if message.error() is None and value:
                    self.seen.append((message.timestamp()[1], orjson.loads(value)))
        self.consumer.close()


def _ms(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp() * 1000)


def _percentiles(values: Sequence[float]) -> dict[str, float]:
    if len(values) < 2:
        return {"count": len(values)}
    cuts = statistics.quantiles(values, n=100)
    return {"count": len(values), "p50_ms": cuts[49], "p99_ms": cuts[98], "max_ms": max(values)}


def live(
    settings: Settings, rate: float, seconds: float, rules: Path, logs: Path
) -> dict[str, Any]:
    """Latency of event-caused triggers and lateness of the bench timer, under live traffic."""
    live_settings = settings.model_copy(
        update={
            "topics": settings.topics.model_copy(
                update={"prefix": f"{settings.topics.prefix}-live"}
            )
        }
    )
    create_topics(live_settings)
    env = {
        **worker_env(live_settings, f"{settings.worker.app_id}-live", PIPELINE),
        "CRMSTREAM_REDIS_KEY_PREFIX": f"{settings.redis.key_prefix}-live",
        "CRMSTREAM_TRIGGERS_RULES_DIR": str(rules),
    }
    reader = _Triggers(live_settings)
    reader.start()
    worker = start_worker(logs / "live.log", env)
    time.sleep(8)  # group joins and the first fetch, before the clock starts
    pacer, sent = Pacer(rate), 0
    events = Simulator(SimulationConfig(seed=9, customers_per_shop=2000, live=True)).events()
    with Publisher(live_settings) as publisher:
        started = time.monotonic()
        for event in events:
            publisher.publish_json(encode(event))
            sent += 1
            pacer.wait(sent)
            if time.monotonic() - started > seconds:
                break
    time.sleep(10)  # the last timers fall due, the relay catches up
    reader.stopping.set()
    reader.join()
    stop_worker(worker)
    delete_topics(live_settings, list(TopicNames.from_settings(live_settings.topics).all))
    latency, lateness, held = [], [], 0
    for broker_ms, trigger in reader.seen:
        delay = broker_ms - _ms(trigger["time"])
        if trigger["data"]["rule"] == "bench-timer":
            lateness.append(delay)
        elif delay > 60_000:
            held += 1  # quiet hours where the customer lives: held on purpose
        else:
            latency.append(delay)
    return {
        "rate": rate,
        "events": sent,
        "latency": _percentiles(latency),
        "timer_lateness": _percentiles(lateness),
        "held_for_quiet_hours": held,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=30)
    args = parser.parse_args()
    run = uuid.uuid4().hex[:8]
    settings = isolated(Settings(), f"t{run}")
    logs = Path(tempfile.gettempdir()) / f"crmstream-bench-{run}"
    logs.mkdir(parents=True)
    rules = logs / "rules"
    shutil.copytree(settings.triggers.rules_dir, rules)
    create_topics(settings)
    with Publisher(settings) as publisher:
        for event in Simulator(SimulationConfig(seed=1, customers_per_shop=5000)).events(
            args.events
        ):
            publisher.publish_json(encode(event))
    print(f"{args.events:,} events pre-loaded; rule pack: {len(list(rules.glob('*.yaml')))} rules")
    profiles_only = throughput(settings, PROFILES_ONLY, args.events, rules, logs)
    with_rules = throughput(settings, PIPELINE, args.events, rules, logs)
    delete_topics(settings, list(TopicNames.from_settings(settings.topics).all))
    (rules / "bench-timer.yaml").write_text(BENCH_TIMER)
    measured = live(settings, with_rules / 2, args.seconds, rules, logs)
    cost = 1 - with_rules / profiles_only
    print(f"machine: {cpu_model()}, {os.cpu_count()} cores")
    print(f"  profiles only        {profiles_only:>10,.0f} ev/s")
    print(f"  with the rule pack   {with_rules:>10,.0f} ev/s   (rules cost {cost:.0%})")
    print(f"  at {measured['rate']:,.0f} ev/s live: trigger latency {measured['latency']}")
    print(f"  timer lateness {measured['timer_lateness']}")
    write_results(
        "triggers",
        events=args.events,
        events_per_second={"profiles only": profiles_only, "rule pack": with_rules},
        rules_cost=cost,
        live=measured,
    )


if __name__ == "__main__":
    main()
