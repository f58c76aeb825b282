"""What every scenario of the suite shares: fresh topics and key spaces, pre-loaded events,
and timing a process while it drains them.

Production is never timed: a scenario publishes its seeded events first, then each
contender reads the same topics in a consumer group of its own and writes into a
Redis key space of its own, removed afterwards. A rate runs from the first event
a contender reports handled to the moment it is done, so process start-up and
group joins are left out of every figure.
"""

from __future__ import annotations

import socket
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from confluent_kafka import Consumer, TopicPartition
from pydantic import RedisDsn

from crmstream.admin import create_topics, delete_topics, list_topics
from crmstream.errors import BenchError
from crmstream.settings import Settings
from crmstream.topics import TopicNames
from handlers.flow import events_taken, flow_counts
from handlers.keys import Keys
from handlers.redis_client import SyncRedisClient, connect_sync
from storefront.publisher import Publisher, encode
from storefront.simulator import SimulationConfig, Simulator

# The sinks a crmstream worker is started with, scenario by scenario; None: the engine as
# the worker wires it when no sink is named, which is what a deployment runs.
INGEST: Final = "handlers.flow:FlowRecorder.from_settings"
PROFILES: Final = "handlers.profile.stage:ProfileStage.from_settings"
FULL: Final = None

_POLL_S = 0.05


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def summary(rates: Sequence[float]) -> dict[str, Any]:
    """Median and spread of several runs; the runs themselves kept for the record."""
    return {
        "median": statistics.median(rates),
        "min": min(rates),
        "max": max(rates),
        "spread": (max(rates) - min(rates)) / statistics.median(rates),
        "runs": list(rates),
    }


@dataclass
class Workspace:
    """One scenario's topics (a prefix of its own) and the Redis key spaces under its name."""

    settings: Settings
    logs: Path
    client: SyncRedisClient
    loaded: int = 0
    _spaces: int = field(default=0)

    @classmethod
    @contextmanager
    def open(cls, label: str) -> Iterator[Workspace]:
        run = f"{label}-{uuid.uuid4().hex[:6]}"
        base = Settings()
        settings = base.model_copy(
            update={
                "topics": base.topics.model_copy(update={"prefix": f"bench.{run}"}),
                "redis": base.redis.model_copy(update={"key_prefix": f"bench-{run}"}),
            }
        )
        create_topics(settings)
        logs = Path(tempfile.gettempdir()) / f"crmstream-bench-{run}"
        logs.mkdir(parents=True, exist_ok=True)
        space = cls(settings, logs, connect_sync(settings.redis))
        try:
            yield space
        finally:
            space.forget(f"{settings.redis.key_prefix}*")  # every run's key space
            space.client.close()
            delete_topics(settings, list(TopicNames.from_settings(settings.topics).all))

    @contextmanager
    def on_cluster(self, url: str) -> Iterator[Workspace]:
        """The same topics and events, with Redis the cluster at ``url`` (workers and the
        harness's own reads alike)."""
        # Key spaces (and so consumer groups) of their own: a group that drained these
        # topics before would start from its committed offsets, at their end.
        redis = self.settings.redis.model_copy(
            update={
                "url": RedisDsn(url),
                "cluster": True,
                "wait_replicas": None,
                "key_prefix": f"{self.settings.redis.key_prefix}-cluster",
            }
        )
        settings = self.settings.model_copy(update={"redis": redis})
        space = replace(self, settings=settings, client=connect_sync(redis))
        try:
            yield space
        finally:
            space.forget(f"{redis.key_prefix}*")
            space.client.close()

    def redis_env(self) -> dict[str, str]:
        """What points a worker at this workspace's Redis."""
        redis = self.settings.redis
        return {
            "CRMSTREAM_REDIS_URL": str(redis.url),
            "CRMSTREAM_REDIS_CLUSTER": "true" if redis.cluster else "false",
        }

    @property
    def topics(self) -> TopicNames:
        return TopicNames.from_settings(self.settings.topics)

    def preload(
        self, count: int, customers_per_shop: int, seed: int = 1, start: datetime | None = None
    ) -> None:
        """``count`` simulated events on the scenario's topics, published before any timing."""
        config = SimulationConfig(seed=seed, customers_per_shop=customers_per_shop)
        if start is not None:
            config.start = start
        simulator = Simulator(config)
        with Publisher(self.settings) as publisher:
            for event in simulator.events(count):
                publisher.publish_json(encode(event))
        self.loaded += count

    def key_space(self) -> Keys:
        """A fresh Redis key prefix under the scenario's own."""
        self._spaces += 1
        return Keys(f"{self.settings.redis.key_prefix}-{self._spaces}")

    def worker_env(self, keys: Keys, sink: str | None, **extra: str) -> dict[str, str]:
        """A crmstream worker in a group of its own, on these topics, writing under ``keys``."""
        return {
            "CRMSTREAM_TOPICS_PREFIX": self.settings.topics.prefix,
            "CRMSTREAM_REDIS_KEY_PREFIX": keys.prefix,
            "CRMSTREAM_WORKER_APP_ID": f"{keys.prefix}-app",
            "CRMSTREAM_WORKER_WEB_PORT": str(free_port()),
            **({} if sink is None else {"CRMSTREAM_WORKER_EVENT_SINK": sink}),
            "CRMSTREAM_WORKER_LOG_FORMAT": "text",
            # A recheck pass in the middle of a timed run would be measured as event work.
            "CRMSTREAM_SEGMENTS_RECHECK_EVERY_S": "86400",
            **self.redis_env(),
            **extra,
        }

    def taken(self, keys: Keys) -> int:
        """Events a crmstream worker has taken in under ``keys`` (its flow counters)."""
        return events_taken(flow_counts(self.client.hgetall(keys.flow)))

    def settled(self, keys: Keys) -> bool:
        """Every decision made and relayed: no put-off events, no outbox entries waiting."""
        pipe = self.client.pipeline(transaction=False)
        for base in keys.trigger_shards():
            pipe.xlen(keys.outbox(base))
            pipe.xlen(keys.segment_outbox(base))
        for partition in range(self.settings.topics.event_partitions):
            pipe.zcard(keys.partition(partition).later)
            pipe.zcard(keys.partition(partition).taken)
        return not any(pipe.execute())

    def committed_all(self, group: str) -> bool:
        """The group has committed every event partition up to its end: each batch has been
        handled in full, whatever a rebalance delivered twice on the way."""
        partitions = [
            TopicPartition(topic, n)
            for topic, count in list_topics(self.settings).items()
            if topic in self.topics.events
            for n in range(count)
        ]
        probe = Consumer({**self.settings.kafka.librdkafka(), "group.id": group})
        try:
            committed = probe.committed(partitions, timeout=10)
            # A partition that never held a record has nothing to commit (offset -1001).
            return all(
                max(part.offset, 0) >= probe.get_watermark_offsets(part, timeout=10)[1]
                for part in committed
            )
        finally:
            probe.close()

    def forget(self, pattern: str) -> None:
        """Every key matching ``pattern`` (a run's key space, or the whole scenario's)."""
        doomed: list[bytes] = []
        for key in self.client.scan_iter(match=pattern, count=5000):
            doomed.append(key)
            if len(doomed) == 5000:
                self.client.unlink(*doomed)
                doomed.clear()
        if doomed:
            self.client.unlink(*doomed)


def drain(
    handled: Callable[[], int],
    count: int,
    procs: Sequence[subprocess.Popen[bytes]],
    limit_s: float,
    *,
    done: Callable[[], bool] = lambda: True,
    on_progress: Callable[[int], None] | None = None,
) -> float:
    """Events per second between the first event handled and the last (and ``done``)."""
    first_at: float | None = None
    first_count = seen = 0
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        seen = handled()
        now = time.perf_counter()
        if seen and first_at is None:
            first_at, first_count = now, seen
        if on_progress is not None:
            on_progress(seen)
        if first_at is not None and seen >= count and done():
            if count - first_count < count // 4:
                raise BenchError(f"{count:,} events went by too fast to time: give it more")
            return (count - first_count) / max(now - first_at, 1e-9)
        if any(proc.poll() is not None for proc in procs):
            raise BenchError("a process under test exited; see its log")
        time.sleep(_POLL_S)
    raise BenchError(f"only {seen:,} of {count:,} events handled within {limit_s:.0f} s")


def rss_bytes(pid: int) -> int:
    """Resident memory of a process, from /proc (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise BenchError(f"no VmRSS for process {pid}")
