"""The real broker: what goes in comes out, all of it, once."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Final

from confluent_kafka.admin import (  # type: ignore[attr-defined]  # exported only implicitly
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ResourceType,
)
from confluent_kafka.cimpl import NewTopic

from crmstream.admin import (
    admin_client,
    appended_topics,
    create_topics,
    list_topics,
    topic_config,
)
from crmstream.errors import TopicError
from crmstream.settings import Settings
from crmstream.topics import TopicNames
from tests.support import consume, eventually, produce

DAY_MS: Final = 86_400_000
SET: Final = AlterConfigOpType.SET


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


def test_what_storefronts_sent_is_kept_for_a_bounded_time(settings: Settings) -> None:
    """The event topics and the dead-letter topic hold contact details as storefronts
    sent them: a week and the operator's days, in segments rolled daily (Kafka deletes
    whole segments), also on an event topic whose retention was changed by hand."""
    names = TopicNames.from_settings(settings.topics)
    create_topics(settings)
    for topic in names.events:
        config_becomes(settings, topic, {"retention.ms": 7 * DAY_MS, "segment.ms": DAY_MS})
    config_becomes(settings, names.dlq, {"retention.ms": 28 * DAY_MS, "segment.ms": DAY_MS})

    by_hand = names.event("customer")
    entry = ConfigEntry("retention.ms", str(90 * DAY_MS), incremental_operation=SET)
    resource = ConfigResource(ResourceType.TOPIC, by_hand, incremental_configs=[entry])
    client = admin_client(settings)  # kept referenced until the change is answered
    for future in client.incremental_alter_configs([resource]).values():
        future.result()
    config_becomes(settings, by_hand, {"retention.ms": 90 * DAY_MS})
    create_topics(settings)
    config_becomes(settings, by_hand, {"retention.ms": 7 * DAY_MS, "segment.ms": DAY_MS})


def retention_becomes(settings: Settings, topic: str, days: int) -> None:
    config_becomes(settings, topic, {"retention.ms": days * DAY_MS})


def config_becomes(settings: Settings, topic: str, wanted: dict[str, int]) -> None:
    """A broker takes a topic's new configuration in a moment, not at once."""
    deadline = time.monotonic() + 15
    expected = {name: str(value) for name, value in wanted.items()}
    while (found := _config(settings, topic, expected.keys())) != expected:
        assert time.monotonic() < deadline, (topic, found)
        time.sleep(0.2)


def _config(settings: Settings, topic: str, names: Iterable[str]) -> dict[str, str] | None:
    try:
        config = topic_config(settings, topic)
    except TopicError:  # just made: not every part of the broker knows it yet
        return None
    return {name: config[name] for name in names if name in config}


def test_event_records_carry_their_append_time_also_on_a_topic_made_before(
    settings: Settings,
) -> None:
    """How late storefronts' writes are is measured from the broker's append time: every
    event topic is set so, also one made earlier with the producer's timestamps."""
    names = TopicNames.from_settings(settings.topics)
    older = names.event("order")
    producer_stamped = {"message.timestamp.type": "CreateTime"}
    create_topics(settings, [NewTopic(older, 1, 1, config=producer_stamped)])
    assert older not in appended_topics(settings)
    create_topics(settings)
    every = set(names.events)
    eventually(
        lambda: appended_topics(settings), 15, "every event topic stamped with append times",
        until=lambda stamped: stamped == every,
    )  # fmt: skip
