"""The ingest consumer: the event topics read in batches, offsets committed after Redis.

Faust runs the worker (its lifecycle, web views, producer, signals), but its
per-message stream machinery tops out near 10,000 events/s on this hardware
while aiokafka's ``getmany`` hands over a whole fetch at once (bench/profiles).
So the hot path is a Faust-managed service around an aiokafka consumer:

- one consumer group (``<app id>.events``) over the five event topics;
- a batch is decoded, dead-lettered and handed to the sink as a whole, and
  only then are its offsets committed, so a crash replays it (the sink is
  idempotent) and nothing is lost;
- while Redis applies one batch, the next is fetched and decoded; batches still
  reach Redis, and commit, strictly one after the other;
- if Redis is down the batch is retried with backoff: consumption simply waits,
  and the group keeps its members alive through aiokafka's background heartbeat;
- a rebalance waits for the batch in flight, which commits before it lets go.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.errors import CommitFailedError, IllegalStateError
from aiokafka.structs import OffsetAndMetadata
from mode import Service

from crmstream import metrics
from crmstream.settings import Settings
from crmstream.topics import TopicNames
from streams.app import aiokafka_options
from streams.ingest import Decoded, Ingest

log = logging.getLogger("crmstream.consumer")


class _WaitForBatch(ConsumerRebalanceListener):  # type: ignore[misc]
    """Partitions are given up only between batches, after the last one committed."""

    def __init__(self, lock: asyncio.Lock) -> None:
        self._lock = lock

    async def on_partitions_revoked(self, revoked: Sequence[TopicPartition]) -> None:
        for partition in revoked:  # another worker reports those now
            with contextlib.suppress(KeyError):
                metrics.CONSUMER_LAG.remove(partition.topic, str(partition.partition))
        async with self._lock:
            log.info("giving up %d partition(s)", len(revoked))

    async def on_partitions_assigned(self, assigned: Sequence[TopicPartition]) -> None:
        log.info("assigned %d partition(s)", len(assigned))


class EventConsumer(Service):
    """Reads the event topics in batches and feeds them to :class:`Ingest`."""

    def __init__(self, settings: Settings, ingest: Ingest, **kwargs: Any) -> None:  # noqa: ANN401 -- mode's Service options
        super().__init__(**kwargs)
        self._settings = settings
        self._ingest = ingest
        self._lock = asyncio.Lock()
        self._consumer: AIOKafkaConsumer | None = None
        self.assigned = False

    @property
    def partitions(self) -> int:
        """Partitions assigned to this worker now (0 before it has joined the group)."""
        return len(self._consumer.assignment()) if self._consumer is not None else 0

    async def on_start(self) -> None:
        worker = self._settings.worker
        consumer = AIOKafkaConsumer(
            **aiokafka_options(self._settings.kafka),
            group_id=f"{worker.app_id}.events",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=worker.batch_max,
            session_timeout_ms=int(worker.session_timeout_s * 1000),
            heartbeat_interval_ms=int(min(3.0, worker.session_timeout_s / 3) * 1000),
            # Partition p of every event topic to the same worker: a customer's browse, cart,
            # order, review and customer events (keyed alike) are all read by one worker,
            # whose event time then covers everything its rules look at.
            partition_assignment_strategy=(RangePartitionAssignor,),
        )
        consumer.subscribe(
            list(TopicNames.from_settings(self._settings.topics).events),
            listener=_WaitForBatch(self._lock),
        )
        await consumer.start()
        self._consumer = consumer
        self.add_future(self._consume(consumer))

    async def on_stop(self) -> None:
        if self._consumer is not None:
            async with self._lock:
                await self._consumer.stop()

    async def _consume(self, consumer: AIOKafkaConsumer) -> None:
        """Fetch and decode the next batch while Redis works on the one before it."""
        within_ms = int(self._settings.worker.batch_within_s * 1000)
        batch_max = self._settings.worker.batch_max
        in_flight: asyncio.Task[None] | None = None
        try:
            while not self.should_stop:
                fetched = await consumer.getmany(timeout_ms=within_ms, max_records=batch_max)
                if not fetched:
                    if self._ingest.metrics:
                        await _behind(consumer)  # keeps the lag gauges current while idle
                    continue
                decoded = self._ingest.decode([r for part in fetched.values() for r in part])
                decoded.behind = await _behind(consumer)
                offsets = {
                    partition: OffsetAndMetadata(part[-1].offset + 1, "")
                    for partition, part in fetched.items()
                }
                if in_flight is not None:
                    # Batches reach Redis and commit one after the other, in order.
                    await in_flight
                in_flight = asyncio.ensure_future(self._finish(consumer, decoded, offsets))
        finally:
            if in_flight is not None:
                await in_flight

    async def _finish(
        self,
        consumer: AIOKafkaConsumer,
        decoded: Decoded,
        offsets: dict[TopicPartition, OffsetAndMetadata],
    ) -> None:
        async with self._lock:
            await self._ingest.deliver(decoded)
            # A rebalance can take partitions between this batch's fetch and its turn here:
            # their records went to the sink all the same, and their next owner reads them
            # again, which the sink's dedup makes harmless. Only what is still ours commits.
            assigned = consumer.assignment()
            ours = {partition: at for partition, at in offsets.items() if partition in assigned}
            try:
                if ours:
                    await consumer.commit(ours)
            except (CommitFailedError, IllegalStateError):
                ours = {}  # the group moved on while we worked, or took them meanwhile
            if len(ours) < len(offsets):
                log.warning(
                    "%d of %d partitions of a batch were taken by a rebalance before it "
                    "committed; their next owner replays them",
                    len(offsets) - len(ours),
                    len(offsets),
                )


async def _behind(consumer: AIOKafkaConsumer) -> dict[tuple[str, int], int | None]:
    """Assigned partitions with records past what was handed out: how many (None: not
    fetched from yet, so unknown)."""
    lagging: dict[tuple[str, int], int | None] = {}
    for partition in consumer.assignment():
        highwater = consumer.highwater(partition)
        try:
            lag = None if highwater is None else highwater - await consumer.position(partition)
        except IllegalStateError:
            continue  # taken away by a rebalance meanwhile
        if lag is not None:
            metrics.CONSUMER_LAG.labels(partition.topic, str(partition.partition)).set(lag)
        if lag is None or lag > 0:
            lagging[(partition.topic, partition.partition)] = lag
    return lagging
