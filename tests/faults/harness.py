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
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import orjson
import redis
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from crmstream.admin import list_topics
from crmstream.settings import Settings
from crmstream.topics import TopicNames
from handlers.keys import Keys
from handlers.redis_client import connect_sync
from storefront.publisher import Publisher
from tests.faults.scenario import Event
from tests.redis_contents import applied, taken
from tests.support import WaitError, eventually, free_port, running_worker, text

# librdkafka's complaints while the broker restarts go to logging, not over the report.
KAFKA_LOG = logging.getLogger("tests.faults.kafka")
# Read nothing this long: the tap's consumer starts afresh from where it stopped.
_TAP_STALL_S = 5.0


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
        self.failure: WaitError | None = None  # the verdict reports it: a thread cannot fail

    def run(self) -> None:
        if not self.events:
            return
        try:
            eventually(
                lambda: taken(self.settings), 180, "the first event taken before the feed",
                until=lambda count: count > 0, every_s=0.1,
            )  # fmt: skip
        except WaitError as never:
            self.failure = never
            return
        size = -(-len(self.events) // self.chunks)
        for start in range(0, len(self.events), size):
            publish(self.settings, self.events[start : start + size])
            # Spacing the chunks is the point (live traffic, not a backlog), not a wait.
            time.sleep(self.pause_s)


class TriggerTap(threading.Thread):
    """Reads the triggers topic from the start for the whole run, and notes when each id
    was first read (wall clock: the producer's timestamp is the relay's to set).

    It takes every partition itself, in no consumer group: a group member loses its
    session when the broker restarts (a fault case) and reads nothing until it has
    joined again, which can take longer than the run waits for the topic. A consumer that
    has read nothing for a while starts afresh from where it stopped: after a broker
    restart, librdkafka was seen to leave assigned partitions unfetched for the rest of a
    run (657 triggers on the topic and none read in 60 s, seed 109)."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(daemon=True, name="trigger-tap")
        self.topic = TopicNames.from_settings(settings.topics).triggers
        self.partitions = list_topics(settings)[self.topic]  # the topics exist by now
        self._config = {
            **settings.kafka.librdkafka(),
            "group.id": f"faults-tap-{free_port()}-{time.monotonic_ns()}",
            "logger": KAFKA_LOG,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
        self.found: list[dict[str, Any]] = []
        self.arrived_ms: dict[str, int] = {}  # trigger id → first read, epoch ms
        self.read_to: dict[int, int] = {}  # partition → the offset after the last one read
        self._lock = threading.Lock()
        self._halt = threading.Event()

    def _consumer(self) -> Consumer:
        """A consumer of every partition, each from the offset after the last one read."""
        consumer = Consumer(self._config)
        consumer.assign(
            [
                TopicPartition(self.topic, p, self.read_to.get(p, OFFSET_BEGINNING))
                for p in range(self.partitions)
            ]
        )
        return consumer

    def run(self) -> None:
        consumer = self._consumer()
        last_read = time.monotonic()
        try:
            while not self._halt.is_set():
                messages = consumer.consume(num_messages=500, timeout=0.3)
                if not messages and time.monotonic() - last_read > _TAP_STALL_S:
                    consumer.close()
                    consumer = self._consumer()
                    last_read = time.monotonic()
                for message in messages:
                    value = message.value()
                    if message.error() is not None or not isinstance(value, bytes):
                        continue
                    last_read = time.monotonic()
                    trigger = orjson.loads(value)
                    with self._lock:
                        self.found.append(trigger)
                        self.arrived_ms.setdefault(trigger["id"], int(time.time() * 1000))
                        partition, offset = message.partition(), message.offset()
                        if partition is not None and offset is not None:
                            self.read_to[partition] = offset + 1
        finally:
            consumer.close()

    def ids(self) -> set[str]:
        with self._lock:
            return set(self.arrived_ms)

    def behind(self, settings: Settings) -> dict[str, int]:
        """What is yet to reach the tap: triggers still in an outbox, and messages on the
        topic not read yet, per partition. Empty once the tap has everything relayed."""
        waiting = outboxed(settings)
        with self._lock:
            read_to = dict(self.read_to)
        probe = Consumer({**settings.kafka.librdkafka(), "group.id": "faults-tap-probe"})
        try:
            for partition in range(list_topics(settings).get(self.topic, 0)):
                end = probe.get_watermark_offsets(TopicPartition(self.topic, partition), 10)[1]
                if end > read_to.get(partition, 0):
                    waiting[f"partition {partition}"] = end - read_to.get(partition, 0)
        finally:
            probe.close()
        return waiting

    def stop(self) -> None:
        self._halt.set()
        self.join(30)


def outboxed(settings: Settings) -> dict[str, int]:
    """Trigger shard → triggers in its outbox, for the shards that hold any."""
    keys = Keys(settings.redis.key_prefix)
    client = connect_sync(settings.redis)
    try:
        lengths = {base: int(client.xlen(keys.outbox(base))) for base in keys.trigger_shards()}
    finally:
        client.close()
    return {f"outbox {base}": length for base, length in lengths.items() if length}


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


class Fleet:
    """The workers of one run: started, stopped and killed by name, each step written down
    with the number of events taken at that moment."""

    def __init__(self, settings: Settings, logs: Path, exits: ExitStack, unique: int) -> None:
        self.settings, self.logs, self.exits = settings, logs, exits
        self.unique = unique  # distinct events in the scenario: applied them all, drained
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
        self.fault(f"{sig.name} to {name}")
        self.procs[name].send_signal(sig)
        self.procs[name].wait(60)

    def fault(self, what: str) -> None:
        """Note a fault about to land, which must land mid-drain: one after the drain would
        test a restart, and the case would pass without testing what it names."""
        self.note(what)
        assert applied(self.settings) < self.unique, (
            f"{what}: every one of the {self.unique} events already applied; schedule "
            + "; ".join(self.schedule)
        )

    def wait_taken(self, count: int, timeout_s: float = 180) -> int:
        """Wait until ``count`` events have been taken in; how many had been, then."""
        return eventually(
            lambda: taken(self.settings), timeout_s, f"{count} events taken",
            until=lambda seen: seen >= count, every_s=0.05,
        )  # fmt: skip

    def wait_joined(self, name: str, timeout_s: float = 60) -> None:
        """Wait until worker ``name`` has been given its share of the partitions."""
        eventually(
            lambda: self.tail(name, lines=3), timeout_s, f"{name} assigned its partitions",
            until=lambda _: self.logged("assigned ", [name]) > 0,
        )  # fmt: skip

    def logged(self, word: str, names: list[str] | None = None) -> int:
        """Lines of the workers' logs so far (of every worker's, unless ``names``) that
        hold ``word``."""
        paths = [self.logs / f"{name}.log" for name in names or self.procs]
        texts = [path.read_text(errors="replace") for path in paths if path.exists()]
        return sum(line.count(word) for text in texts for line in text.splitlines())

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

    def tail(self, name: str, lines: int = 25) -> str:
        path = self.logs / f"{name}.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def tails(self) -> str:
        return "\n".join(f"--- {name} (log tail)\n{self.tail(name)}" for name in self.procs)
