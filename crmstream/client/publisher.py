"""Publishing CloudEvents to the event topics, as a storefront would.

Idempotent producer (no duplicates from retries), ``acks=all``, compressed
batches with a short linger. Keys are ``"<shop>:<customer>"`` so one
customer's events stay in one partition, in order.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Final, Self

import orjson
from confluent_kafka import KafkaError as RdKafkaError
from confluent_kafka import Message, Producer

from crmstream.errors import KafkaError
from crmstream.settings import Settings
from crmstream.topics import TopicNames

_log = logging.getLogger("crmstream.publisher")

# type prefix → event stream (topic), DESIGN.md §1.
STREAM_OF_TYPE_PREFIX: Final = {
    "item": "browse",
    "search": "browse",
    "cart": "cart",
    "order": "order",
    "review": "review",
    "customer": "customer",
    "survey": "customer",
}


def stream_of(event_type: str) -> str:
    prefix = event_type.partition(".")[0]
    try:
        return STREAM_OF_TYPE_PREFIX[prefix]
    except KeyError:
        raise KafkaError(f"no event topic carries type {event_type!r}") from None


def partition_key(event: Mapping[str, Any]) -> bytes:
    who = event.get("subject") or event.get("anonymousid") or ""
    return f"{event.get('shop', '')}:{who}".encode()


@dataclass(slots=True)
class DeliveryReport:
    """What the broker said about the messages sent so far."""

    delivered: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)

    def on_delivery(self, error: RdKafkaError | None, _message: Message) -> None:
        if error is None:
            self.delivered += 1
            return
        self.failed += 1
        if len(self.errors) < 100:  # enough to diagnose, bounded for a long run
            self.errors.append(error.str())


class Publisher:
    """Sends events to their topic. Use as a context manager: leaving it flushes."""

    def __init__(self, settings: Settings, **overrides: str | int | float | bool) -> None:
        self.topics = TopicNames.from_settings(settings.topics)
        conf: dict[str, Any] = {
            **settings.kafka.librdkafka(),
            "enable.idempotence": True,
            "acks": "all",
            "compression.type": "lz4",
            "linger.ms": 5,
            "batch.size": 256 * 1024,
            # librdkafka's own lines go through logging instead of straight to stderr.
            "logger": _log,
        }
        conf.update(overrides)
        self._producer = Producer(conf)
        self.report = DeliveryReport()

    def publish(self, event: Mapping[str, Any]) -> None:
        """Queue one event (a CloudEvent as a mapping) for sending."""
        self.publish_raw(
            self.topics.event(stream_of(str(event["type"]))),
            partition_key(event),
            orjson.dumps(event),
        )

    def publish_raw(self, topic: str, key: bytes | None, value: bytes) -> None:
        """Queue bytes as they are; used for replays and for testing the dead-letter path."""
        while True:
            try:
                self._producer.produce(topic, value, key, on_delivery=self.report.on_delivery)
                break
            except BufferError:
                # The local queue is full: let the broker drain some before trying again.
                self._producer.poll(0.1)
        self._producer.poll(0)

    def flush(self, timeout_s: float = 30.0) -> DeliveryReport:
        remaining = self._producer.flush(timeout_s)
        if remaining:
            raise KafkaError(f"{remaining} messages still unsent after {timeout_s:.0f}s")
        return self.report

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.flush()
