"""The event consumer's rebalance listener: partitions are given up between batches, after
the last one committed, and taken up where the sink's store says their state stands."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Protocol

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError

from crmstream import metrics
from handlers.sink import KeepsOffsets
from streams.commits import KafkaCommits
from streams.ingest import Ingest

log = logging.getLogger("crmstream.consumer")


class BatchOwner(Protocol):
    """What the listener needs of the consumer it serves (streams/consumer.py)."""

    @property
    def lock(self) -> asyncio.Lock: ...

    @property
    def commits(self) -> KafkaCommits: ...

    @property
    def consumer(self) -> AIOKafkaConsumer: ...

    @property
    def ingest(self) -> Ingest: ...


class WaitForBatch(ConsumerRebalanceListener):  # type: ignore[misc]
    """Partitions are given up only between batches, after the last one committed, and
    taken up where the sink's store says their state stands."""

    def __init__(self, owner: BatchOwner) -> None:
        self._owner = owner

    async def on_partitions_revoked(self, revoked: Sequence[TopicPartition]) -> None:
        for partition in revoked:  # another worker reports those now
            with contextlib.suppress(KeyError):
                metrics.CONSUMER_LAG.remove(partition.topic, str(partition.partition))
        async with self._owner.lock:
            log.info("giving up %d partition(s)", len(revoked))
            try:
                await self._owner.commits.commit(self._owner.consumer)
            except KafkaError as exc:  # Kafka's commits only follow the store's offsets
                log.warning("offsets not committed to Kafka before the rebalance: %s", exc)
            sink = self._owner.ingest.sink
            if isinstance(sink, KeepsOffsets):
                await sink.partitions_revoked([(tp.topic, tp.partition) for tp in revoked])

    async def on_partitions_assigned(self, assigned: Sequence[TopicPartition]) -> None:
        log.info("assigned %d partition(s)", len(assigned))
        sink = self._owner.ingest.sink
        if not isinstance(sink, KeepsOffsets):
            return
        positions = await sink.partitions_assigned([(tp.topic, tp.partition) for tp in assigned])
        consumer = self._owner.consumer
        for (topic, partition), offset in positions.items():
            consumer.seek(TopicPartition(topic, partition), offset)
            self._owner.commits.resumed(TopicPartition(topic, partition), offset)
