"""Topic administration through confluent-kafka's AdminClient: idempotent create, describe."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from confluent_kafka import KafkaError as RdKafkaError
from confluent_kafka import KafkaException
from confluent_kafka.admin import (  # type: ignore[attr-defined]  # exported only implicitly
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ResourceType,
)
from confluent_kafka.cimpl import NewTopic  # re-exported by .admin, but only implicitly

from crmstream.errors import KafkaError, TopicError
from crmstream.settings import Settings
from crmstream.topics import TopicNames

_DAY_MS: Final = 24 * 3600 * 1000
_WEEK_MS: Final = 7 * _DAY_MS

# Kafka deletes whole segments, once their newest record is older than retention.ms: a
# segment rolled daily keeps a record at most a day past it, where the broker's default
# (a week) would keep it up to twice as long. The event topics and the dead-letter topic
# hold what storefronts sent, contact details included; they are rolled daily.
_SEGMENT: Final = {"segment.ms": str(_DAY_MS)}
# Each event record carries the broker's append time beside the event's own time: how
# late storefronts' writes reach the broker is then measured, and a partition's decisions
# wait just that long (handlers/timing/allowance.py).
_APPEND_TIME: Final = {"message.timestamp.type": "LogAppendTime"}
_TOPIC_CONFIG: Final = {
    "events": {"retention.ms": str(_WEEK_MS), **_SEGMENT, **_APPEND_TIME},
    "output": {"retention.ms": str(_WEEK_MS)},
}


def event_config() -> dict[str, str]:
    """Events are kept as storefronts sent them, for a week, stamped with their append time."""
    return dict(_TOPIC_CONFIG["events"])


def dlq_config(settings: Settings) -> dict[str, str]:
    """Dead letters are kept as they came, for as long as the operator set."""
    return {"retention.ms": str(settings.topics.dlq_retention_days * _DAY_MS), **_SEGMENT}


@dataclass(frozen=True, slots=True)
class TopicOutcome:
    name: str
    partitions: int
    created: bool


def admin_client(settings: Settings) -> AdminClient:
    return AdminClient(settings.kafka.librdkafka())


def list_topics(settings: Settings, timeout_s: float = 10.0) -> dict[str, int]:
    """Topic name → partition count, as the broker sees it now."""
    try:
        metadata = admin_client(settings).list_topics(timeout=timeout_s)
    except KafkaException as exc:
        raise KafkaError(f"broker at {settings.kafka.bootstrap} did not answer: {exc}") from exc
    return {name: len(topic.partitions) for name, topic in metadata.topics.items()}


def planned_topics(settings: Settings) -> list[NewTopic]:
    names = TopicNames.from_settings(settings.topics)
    replicas = settings.topics.replication_factor
    planned = [
        NewTopic(name, settings.topics.event_partitions, replicas, config=_TOPIC_CONFIG["events"])
        for name in names.events
    ]
    planned.append(
        NewTopic(
            names.dlq, settings.topics.output_partitions, replicas, config=dlq_config(settings)
        )
    )
    planned.extend(
        NewTopic(name, settings.topics.output_partitions, replicas, config=_TOPIC_CONFIG["output"])
        for name in (names.triggers, names.segments)
    )
    return planned


def create_topics(
    settings: Settings, topics: list[NewTopic] | None = None, timeout_s: float = 30.0
) -> list[TopicOutcome]:
    """Create the topics that are missing; those that exist are left as they are."""
    wanted = topics if topics is not None else planned_topics(settings)
    client = admin_client(settings)
    futures = client.create_topics(wanted, operation_timeout=timeout_s, request_timeout=timeout_s)
    outcomes = []
    for topic in wanted:
        try:
            futures[topic.topic].result()
            created = True
        except KafkaException as exc:
            error = exc.args[0]
            if error.code() != RdKafkaError.TOPIC_ALREADY_EXISTS:
                raise TopicError(f"cannot create topic {topic.topic}: {error.str()}") from exc
            created = False
        outcomes.append(TopicOutcome(topic.topic, topic.num_partitions, created))
    if topics is None:
        _keep_config(client, settings, timeout_s)
    return outcomes


def _keep_config(client: AdminClient, settings: Settings, timeout_s: float) -> None:
    """Topics made earlier that hold what storefronts sent (the event topics, the
    dead-letter topic) take the configuration set now: how long Kafka keeps a customer's
    contact details is then what the README says, and event records written from now on
    carry their append time."""
    names = TopicNames.from_settings(settings.topics)
    wanted = {name: event_config() for name in names.events} | {names.dlq: dlq_config(settings)}
    resources = [
        ConfigResource(
            ResourceType.TOPIC,
            name,
            incremental_configs=[
                ConfigEntry(key, value, incremental_operation=AlterConfigOpType.SET)
                for key, value in config.items()
            ],
        )
        for name, config in wanted.items()
    ]
    futures = client.incremental_alter_configs(resources, request_timeout=timeout_s)
    for resource, future in futures.items():
        try:
            future.result()
        except KafkaException as exc:
            raise TopicError(
                f"cannot set the configuration of {resource.name}: {exc.args[0].str()}"
            ) from exc


def topic_config(settings: Settings, name: str, timeout_s: float = 10.0) -> dict[str, str]:
    """A topic's configuration as the broker holds it."""
    resource = ConfigResource(ResourceType.TOPIC, name)
    # Keep the client referenced until the futures resolve: a collected handle fails them.
    client = admin_client(settings)
    futures = client.describe_configs([resource], request_timeout=timeout_s)
    try:
        described = next(iter(futures.values())).result()
    except KafkaException as exc:
        raise TopicError(f"cannot describe topic {name}: {exc.args[0].str()}") from exc
    return {key: entry.value for key, entry in described.items()}


def appended_topics(settings: Settings, timeout_s: float = 10.0) -> frozenset[str]:
    """The event topics whose records the broker stamps with their append time."""
    names = TopicNames.from_settings(settings.topics)
    resources = [ConfigResource(ResourceType.TOPIC, name) for name in names.events]
    client = admin_client(settings)
    futures = client.describe_configs(resources, request_timeout=timeout_s)
    stamped = set()
    for resource, future in futures.items():
        try:
            described = future.result()
        except KafkaException as exc:
            if exc.args[0].code() == RdKafkaError.UNKNOWN_TOPIC_OR_PART:
                continue  # not made yet: it stamps nothing
            raise TopicError(f"cannot describe topic {resource.name}: {exc.args[0].str()}") from exc
        entry = described.get("message.timestamp.type")
        if entry is not None and entry.value == "LogAppendTime":
            stamped.add(resource.name)
    return frozenset(stamped)


def delete_topics(settings: Settings, names: list[str], timeout_s: float = 30.0) -> None:
    """Delete topics; missing ones are not an error (used by tests and replays)."""
    if not names:
        return
    # Keep the client referenced until the futures resolve: a collected handle fails them.
    client = admin_client(settings)
    futures = client.delete_topics(names, operation_timeout=timeout_s)
    for name, future in futures.items():
        try:
            future.result()
        except KafkaException as exc:
            if exc.args[0].code() != RdKafkaError.UNKNOWN_TOPIC_OR_PART:
                raise TopicError(f"cannot delete topic {name}: {exc.args[0].str()}") from exc
