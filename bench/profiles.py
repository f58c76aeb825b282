"""Kafka → validate → profile update, against the raw ceiling and the naive agent, same data.

    python -m bench.profiles [--events 100000]

All read the same pre-loaded topics (production is never timed). The ceilings
are a confluent-kafka and an aiokafka consumer that only read and parse;
crmstream is a real worker process; the naive baseline is a Faust agent with one
Redis round trip per event. Each rate is taken between the first and the last
event handled, so process start-up and group joins are left out.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import orjson
import redis
from aiokafka import AIOKafkaConsumer
from confluent_kafka import Consumer

from bench.decode import cpu_model, write_results
from crmstream.admin import create_topics, delete_topics
from crmstream.client.publisher import Publisher, encode
from crmstream.client.simulator import SimulationConfig, Simulator
from crmstream.settings import Settings
from crmstream.topics import TopicNames
from handlers.keys import Keys
from handlers.redis_client import connect_sync
from streams.app import aiokafka_options
from streams.cli.child_worker import start_worker, stop_worker


def isolated(base: Settings, run: str) -> Settings:
    return base.model_copy(
        update={
            "topics": base.topics.model_copy(update={"prefix": f"bench.{run}"}),
            "redis": base.redis.model_copy(update={"key_prefix": f"bench-{run}"}),
            "worker": base.worker.model_copy(update={"app_id": f"bench-{run}", "web_port": 0}),
        }
    )


PROFILES_ONLY = "handlers.profile.stage:ProfileStage.from_settings"


def worker_env(settings: Settings, app_id: str, sink: str = PROFILES_ONLY) -> dict[str, str]:
    """A worker of its own group on the bench topics; profiles only unless told otherwise."""
    return {
        "CRMSTREAM_TOPICS_PREFIX": settings.topics.prefix,
        "CRMSTREAM_REDIS_KEY_PREFIX": settings.redis.key_prefix,
        "CRMSTREAM_WORKER_APP_ID": app_id,
        "CRMSTREAM_WORKER_WEB_PORT": str(_free_port()),
        "CRMSTREAM_WORKER_EVENT_SINK": sink,
    }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _ceiling(settings: Settings, count: int) -> float:
    consumer = Consumer(
        {
            **settings.kafka.librdkafka(),
            "group.id": f"ceiling-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe(list(TopicNames.from_settings(settings.topics).events))
    seen = 0
    started = 0.0
    while seen < count:
        for message in consumer.consume(num_messages=1000, timeout=1.0):
            if message.error() is None:
                if not seen:
                    started = time.perf_counter()
                orjson.loads(message.value() or b"null")
                seen += 1
    elapsed = time.perf_counter() - started
    consumer.close()
    return (seen - 1) / elapsed


def _ceiling_aiokafka(settings: Settings, count: int) -> float:
    """The same, with aiokafka (Faust's client, and the worker's): getmany batches."""

    async def read() -> float:
        consumer = AIOKafkaConsumer(
            *TopicNames.from_settings(settings.topics).events,
            **aiokafka_options(settings.kafka),
            group_id=f"ceiling-{uuid.uuid4().hex}",
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        seen, started = 0, 0.0
        try:
            while seen < count:
                for records in (await consumer.getmany(timeout_ms=1000, max_records=5000)).values():
                    if not seen:
                        started = time.perf_counter()
                    for record in records:
                        orjson.loads(record.value)
                    seen += len(records)
        finally:
            await consumer.stop()
        return seen / (time.perf_counter() - started)

    return asyncio.run(read())


def drain(
    read_count: Callable[[], int], count: int, proc: subprocess.Popen[bytes], limit_s: float
) -> float:
    """Rate between the first and the last event a worker process reports as handled."""
    first_at = first_count = None
    deadline = time.monotonic() + limit_s
    done = 0
    while time.monotonic() < deadline:
        done = read_count()
        now = time.perf_counter()
        if done and first_at is None:
            first_at, first_count = now, done
        if done >= count and first_at is not None and first_count is not None:
            return (done - first_count) / max(now - first_at, 1e-9)
        if proc.poll() is not None:
            raise RuntimeError("the worker under test exited")
        time.sleep(0.05)
    raise RuntimeError(f"only {done} of {count} events handled within {limit_s:.0f}s")


def _memory_per_profile(client: redis.Redis, prefix: str) -> dict[str, float]:
    sizes: dict[str, int] = {}
    for key in client.scan_iter(match=f"{prefix}:{{*", count=1000):
        text = key.decode()
        owner = text[text.index("{") : text.index("}") + 1]
        sizes[owner] = sizes.get(owner, 0) + int(client.memory_usage(key, samples=0) or 0)
    values = sorted(sizes.values())
    if not values:
        return {}
    return {
        "profiles": len(values),
        "median_bytes": values[len(values) // 2],
        "p90_bytes": values[int(len(values) * 0.9)],
        "max_bytes": values[-1],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--customers", type=int, default=5_000, help="per shop")
    args = parser.parse_args()

    run = uuid.uuid4().hex[:8]
    settings = isolated(Settings(), run)
    create_topics(settings)
    events = Simulator(SimulationConfig(seed=1, customers_per_shop=args.customers)).events(
        args.events
    )
    with Publisher(settings) as publisher:
        for event in events:
            publisher.publish_json(encode(event))
    print(f"{args.events:,} events pre-loaded into {settings.topics.prefix}.events.*")

    client = connect_sync(settings.redis)
    flow = Keys(settings.redis.key_prefix).flow
    results: dict[str, float] = {}
    results["ceiling (confluent-kafka, read + parse)"] = _ceiling(settings, args.events)
    results["ceiling (aiokafka, read + parse)"] = _ceiling_aiokafka(settings, args.events)

    log_dir = Path(tempfile.gettempdir()) / f"crmstream-bench-{run}"
    worker = start_worker(log_dir / "crmstream.log", worker_env(settings, f"bench-{run}-crm"))
    try:
        results["crmstream worker"] = drain(
            lambda: sum(int(v) for v in client.hgetall(flow).values()), args.events, worker, 600
        )
    finally:
        stop_worker(worker)
    memory = _memory_per_profile(client, settings.redis.key_prefix)

    naive = subprocess.Popen(
        [sys.executable, "-m", "bench.naive", "worker", "--loglevel", "warning"],
        env={**os.environ, **worker_env(settings, f"bench-{run}-naive")},
        stdout=(log_dir / "naive.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    naive_key = f"{settings.redis.key_prefix}:naive:taken"
    try:
        results["naive Faust agent (a round trip per event)"] = drain(
            lambda: int(client.get(naive_key) or 0), args.events, naive, 1200
        )
    finally:
        stop_worker(naive)

    ours = results["crmstream worker"]
    print(f"machine: {cpu_model()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    for name, rate in results.items():
        print(f"  {name:<46} {rate:>10,.0f} ev/s   {rate / ours:5.2f} x crmstream")
    if memory:
        print(
            f"  Redis per profile: median {memory['median_bytes']:,.0f} B, "
            f"p90 {memory['p90_bytes']:,.0f} B, max {memory['max_bytes']:,.0f} B "
            f"over {memory['profiles']:,.0f} profiles"
        )
    write_results(
        "profiles",
        events=args.events,
        events_per_second=results,
        redis_bytes_per_profile=memory,
    )
    for key in client.scan_iter(match=Keys(settings.redis.key_prefix).pattern(), count=1000):
        client.unlink(key)
    client.close()
    delete_topics(settings, list(TopicNames.from_settings(settings.topics).all))


if __name__ == "__main__":
    main()
