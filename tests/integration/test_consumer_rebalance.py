"""A batch whose partitions a rebalance took away before it committed."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import OffsetAndMetadata

from crmstream.admin import create_topics
from crmstream.settings import Settings
from crmstream.topics import TopicNames
from handlers.sink import KeepsOffsets
from schemas.events import Envelope
from streams.app import aiokafka_options, create_app
from streams.consumer import EventConsumer
from streams.dead_letters import DeadLetters
from streams.ingest import Decoded, Ingest


class _Nothing:
    async def handle(
        self, events: Sequence[Envelope], partitions: Sequence[int] | None = None
    ) -> None:
        pass

    async def close(self) -> None:
        pass


async def test_what_is_still_ours_commits_and_the_rest_is_left_to_its_new_owner(
    settings: Settings,
) -> None:
    # Two workers found this: a batch fetched just before a rebalance reached its commit
    # after the partition had gone, and the commit's IllegalStateError crashed the worker.
    create_topics(settings)
    topic = TopicNames.from_settings(settings.topics).event("order")
    kept, taken = TopicPartition(topic, 0), TopicPartition(topic, 1)
    app = create_app(settings)
    ingest = Ingest(settings, _Nothing(), DeadLetters(app.topic(f"{topic}.unused")))
    consumer = AIOKafkaConsumer(
        **aiokafka_options(settings.kafka),
        group_id=f"{settings.worker.app_id}.events",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        consumer.assign([kept])
        offsets = {kept: OffsetAndMetadata(3, ""), taken: OffsetAndMetadata(7, "")}
        await EventConsumer(settings, ingest)._finish(consumer, Decoded(batch=[]), offsets)
        assert await consumer.committed(kept) == 3
        assert await consumer.committed(taken) is None
    finally:
        await consumer.stop()


class _KeepsOffsets(_Nothing):
    """A sink whose store keeps the offsets (handlers/sink.py KeepsOffsets), all taken."""

    async def partitions_assigned(
        self, partitions: Sequence[tuple[str, int]]
    ) -> dict[tuple[str, int], int]:
        return {}

    async def partitions_revoked(self, partitions: Sequence[tuple[str, int]]) -> None:
        pass

    async def check_offsets(self, partitions: Iterable[tuple[str, int]]) -> None:
        pass

    async def record_offsets(self, offsets: Mapping[tuple[str, int], int]) -> None:
        pass


async def test_kafka_hears_of_recorded_offsets_at_most_every_second_and_when_asked(
    settings: Settings,
) -> None:
    """Where the store keeps the offsets, Kafka's commits only follow: a busy worker's
    batches do not each wait for one. What was recorded meanwhile is committed at the next
    commit (idle, a rebalance, a stop), the newest offset of each partition."""
    create_topics(settings)
    topic = TopicNames.from_settings(settings.topics).event("order")
    first, second = TopicPartition(topic, 0), TopicPartition(topic, 1)
    app = create_app(settings)
    sink = _KeepsOffsets()
    assert isinstance(sink, KeepsOffsets)
    ingest = Ingest(settings, sink, DeadLetters(app.topic(f"{topic}.unused")))
    consumer = AIOKafkaConsumer(
        **aiokafka_options(settings.kafka),
        group_id=f"{settings.worker.app_id}.events",
        enable_auto_commit=False,
    )
    await consumer.start()
    events = EventConsumer(settings, ingest)
    try:
        consumer.assign([first, second])
        await events._finish(consumer, Decoded(batch=[]), {first: OffsetAndMetadata(3, "")})
        assert await consumer.committed(first) == 3  # the first batch: nothing to wait for
        await events._finish(consumer, Decoded(batch=[]), {first: OffsetAndMetadata(5, "")})
        await events._finish(consumer, Decoded(batch=[]), {second: OffsetAndMetadata(2, "")})
        assert await consumer.committed(first) == 3  # within the second: left for later
        assert await consumer.committed(second) is None
        await events.commits.commit(consumer)
        assert await consumer.committed(first) == 5
        assert await consumer.committed(second) == 2
    finally:
        await consumer.stop()
