"""A batch whose partitions a rebalance took away before it committed."""

from __future__ import annotations

from collections.abc import Sequence

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import OffsetAndMetadata

from crmstream.admin import create_topics
from crmstream.settings import Settings
from crmstream.topics import TopicNames
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
