"""Real workers, a tap on the triggers topic, and what a failed run must say about itself."""

from __future__ import annotations

import logging
import re
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import orjson
import redis
from confluent_kafka import Consumer, KafkaException, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from crmstream.admin import list_topics
from crmstream.settings import Settings
from crmstream.topics import TopicNames
from handlers.flow import flow_counts
from handlers.keys import Keys
from handlers.redis_client import connect_sync
from storefront.publisher import Publisher
from tests.faults.scenario import Event
from tests.support import free_port, running_worker, text

# librdkafka's complaints while the broker restarts go to logging, not over the report.
KAFKA_LOG = logging.getLogger("tests.faults.kafka")


def own_port(settings: Settings) -> Settings:
    # Each worker its own web port: a second one on the same port would not start.
    return settings.model_copy(
        update={"worker": settings.worker.model_copy(update={"web_port": free_port()})}
    )


def publish(settings: Settings, events: list[Event]) -> None:
    with Publisher(settings) as publisher:
        for event in events:
            publisher.publish_json(orjson.dumps(event))
        # Longer than the default: the broker may be restarting under us.
        publisher.flush(180)


class Feed(threading.Thread):
    """The tail of the scenario, published in chunks while the workers run, once the first
    event has been taken: the faults then land in a drain that is still being fed, and
    not after a backlog that a healthy worker reads in a second or two."""

    def __init__(
        self, settings: Settings, events: list[Event], chunks: int, pause_s: float
    ) -> None:
        super().__init__(daemon=True, name="feed")
        self.settings, self.events, self.chunks, self.pause_s = settings, events, chunks, pause_s

    def run(self) -> None:
        if not self.events:
            return
        wait_for(lambda: taken(self.settings) > 0, 180, every_s=0.1)
        size = -(-len(self.events) // self.chunks)
        for start in range(0, len(self.events), size):
            publish(self.settings, self.events[start : start + size])
            time.sleep(self.pause_s)


class TriggerTap(threading.Thread):
    """Reads the triggers topic from the start for the whole run, and notes when each id
    was first read (wall clock: the producer's timestamp is the relay's to set)."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(daemon=True, name="trigger-tap")
        self.topic = TopicNames.from_settings(settings.topics).triggers
        self.consumer = Consumer(
            {
                **settings.kafka.librdkafka(),
                "group.id": f"faults-tap-{free_port()}-{time.monotonic_ns()}",
                "logger": KAFKA_LOG,
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
            }
        )
        self.found: list[dict[str, Any]] = []
        self.arrived_ms: dict[str, int] = {}  # trigger id → first read, epoch ms
        self._lock = threading.Lock()
        self._halt = threading.Event()

    def run(self) -> None:
        self.consumer.subscribe([self.topic])
        try:
            while not self._halt.is_set():
                for message in self.consumer.consume(num_messages=500, timeout=0.3):
                    value = message.value()
                    if message.error() is not None or not isinstance(value, bytes):
                        continue
                    trigger = orjson.loads(value)
                    with self._lock:
                        self.found.append(trigger)
                        self.arrived_ms.setdefault(trigger["id"], int(time.time() * 1000))
        finally:
            self.consumer.close()

    def ids(self) -> set[str]:
        with self._lock:
            return set(self.arrived_ms)

    def stop(self) -> None:
        self._halt.set()
        self.join(30)


def taken(settings: Settings) -> int:
    """Events the workers have taken in (their flow counters); -1 while Redis is away."""
    try:
        client = connect_sync(settings.redis)
        try:
            return sum(flow_counts(client.hgetall(Keys(settings.redis.key_prefix).flow)).values())
        finally:
            client.close()
    except redis.RedisError:
        return -1


def engine_state(settings: Settings) -> str:
    """What the engine's Redis holds, by kind of key (the part after the hash tag) and
    type, with the sizes summed: read by name only, so that it survives a change of
    layout, yet shows outboxes not drained, decisions put off, timers still pending."""
    sizes: dict[str, list[int]] = {}
    try:
        client = connect_sync(settings.redis)
        size_of = {"zset": client.zcard, "stream": client.xlen, "hash": client.hlen}
        try:
            prefix = Keys(settings.redis.key_prefix).pattern()[:-1]
            for raw in client.scan_iter(match=prefix + "*"):
                key = text(raw)
                # Hash tags and customers folded away: one line per kind of key.
                parts = re.sub(r"\{[^}]*\}", "{}", key.removeprefix(prefix)).split(":")
                kind = text(client.type(key))
                name = ":".join(parts[:2] if parts[0] == "{}" else parts[:1])
                entry = sizes.setdefault(f"{name}/{kind}", [0, 0])
                entry[0] += 1
                entry[1] += int(size_of[kind](key)) if kind in size_of else 1
        finally:
            client.close()
    except redis.RedisError as error:
        return f"Redis not readable: {error}"
    kinds = ", ".join(f"{k}: {n} keys/{total} entries" for k, (n, total) in sorted(sizes.items()))
    return f"Redis by kind of key: {kinds}"


def backlog_read(settings: Settings) -> bool:
    """The workers' group has committed every event partition up to its end."""
    names = TopicNames.from_settings(settings.topics).events
    probe = Consumer(
        {**settings.kafka.librdkafka(), "group.id": f"{settings.worker.app_id}.events"}
    )
    try:
        partitions = [
            TopicPartition(topic, n)
            for topic, count in list_topics(settings).items()
            if topic in names
            for n in range(count)
        ]
        committed = probe.committed(partitions, timeout=10)
        # A partition that never held a record has nothing to commit (offset -1001).
        return all(
            max(part.offset, 0) >= probe.get_watermark_offsets(part, timeout=10)[1]
            for part in committed
        )
    except KafkaException:
        return False
    finally:
        probe.close()


def wait_for(check: Callable[[], bool], timeout_s: float, every_s: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(every_s)
    return False


class Fleet:
    """The workers of one run: started, stopped and killed by name, each step written down
    with the number of events taken at that moment."""

    def __init__(self, settings: Settings, logs: Path, exits: ExitStack) -> None:
        self.settings, self.logs, self.exits = settings, logs, exits
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.web_ports: dict[str, int] = {}
        self.schedule: list[str] = []
        self.began = time.monotonic()

    def note(self, what: str) -> None:
        elapsed = time.monotonic() - self.began
        self.schedule.append(f"{elapsed:6.1f}s {what} at {taken(self.settings)} events taken")

    def start(self) -> str:
        name = f"w{len(self.procs) + 1}"
        log = self.logs / f"{name}.log"
        worker_settings = own_port(self.settings)
        self.web_ports[name] = worker_settings.worker.web_port
        self.procs[name] = self.exits.enter_context(
            running_worker(worker_settings, log, loglevel="info")
        )
        self.note(f"started {name}")
        return name

    def alive(self) -> list[str]:
        return [name for name, proc in self.procs.items() if proc.poll() is None]

    def assert_alive(self, name: str) -> None:
        assert self.procs[name].poll() is None, f"{name} died:\n{self.tail(name)}"

    def stop(self, name: str, sig: signal.Signals) -> None:
        self.assert_alive(name)
        self.note(f"{sig.name} to {name}")
        self.procs[name].send_signal(sig)
        self.procs[name].wait(60)

    def metric(self, name: str) -> float:
        """A metric summed over the workers alive, from their /metrics (a worker that does
        not answer yet counts nothing): what each has counted since it started."""
        total = 0.0
        for worker in self.alive():
            url = f"http://127.0.0.1:{self.web_ports[worker]}/metrics"
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    page = response.read().decode()
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                continue
            total += sum(
                sample.value
                for family in text_string_to_metric_families(page)
                for sample in family.samples
                if sample.name == name
            )
        return total

    def wait_taken(self, count: int, timeout_s: float = 180) -> None:
        wait_for(lambda: taken(self.settings) >= count, timeout_s)

    def tail(self, name: str, lines: int = 25) -> str:
        path = self.logs / f"{name}.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def tails(self) -> str:
        return "\n".join(f"--- {name} (log tail)\n{self.tail(name)}" for name in self.procs)
