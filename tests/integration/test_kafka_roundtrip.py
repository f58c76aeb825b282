"""The real broker: what goes in comes out, all of it, once."""

from __future__ import annotations

import time

from confluent_kafka.cimpl import NewTopic

from crmstream.admin import create_topics, list_topics, topic_config
from crmstream.errors import TopicError
from crmstream.settings import Settings
from crmstream.topics import TopicNames
from tests.support import consume, produce


def test_ten_thousand_messages_come_back_exactly(settings: Settings) -> None:
    topic = f"{settings.topics.prefix}.roundtrip"
    create_topics(settings, [NewTopic(topic, 4, 1)])
    sent = {(f"k{i % 97}".encode(), f"message-{i}".encode()) for i in range(10_000)}

    produce(settings, topic, sorted(sent))
    received = consume(settings, [topic], count=10_000)

    assert len(received) == 10_000
    assert {(m.key(), m.value()) for m in received} == sent


def test_topics_create_is_idempotent_and_makes_every_design_topic(settings: Settings) -> None:
    first = create_topics(settings)
    second = create_topics(settings)

    names = TopicNames.from_settings(settings.topics)
    assert {o.name for o in first if o.created} == set(names.all)
    assert not any(o.created for o in second)
    on_broker = list_topics(settings)
    for name in names.events:
        assert on_broker[name] == settings.topics.event_partitions
    for name in names.outputs:
        assert on_broker[name] == settings.topics.output_partitions


def test_the_dead_letter_retention_is_the_operators_and_follows_a_change(
    settings: Settings,
) -> None:
    dlq = TopicNames.from_settings(settings.topics).dlq
    create_topics(settings)
    retention_becomes(settings, dlq, 28)

    shorter = settings.model_copy(
        update={"topics": settings.topics.model_copy(update={"dlq_retention_days": 3})}
    )
    create_topics(shorter)
    retention_becomes(settings, dlq, 3)


def retention_becomes(settings: Settings, topic: str, days: int) -> None:
    """A broker takes a topic's new configuration in a moment, not at once."""
    deadline = time.monotonic() + 15
    while (found := _retention(settings, topic)) != str(days * 86_400_000):
        assert time.monotonic() < deadline, found
        time.sleep(0.2)


def _retention(settings: Settings, topic: str) -> str | None:
    try:
        return topic_config(settings, topic).get("retention.ms")
    except TopicError:  # just made: not every part of the broker knows it yet
        return None
