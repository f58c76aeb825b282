"""Publishing CloudEvents to the event topics, as a storefront would.

Every event is validated exactly as the worker will validate it, so a bad one
is refused here, with the same reason, instead of ending in the dead-letter
topic. The producer is idempotent (no duplicates from retries), waits for all
in-sync replicas (``acks=all``), compresses, and batches with a short linger.
Keys are ``"<shop>:<customer>"`` so one customer's events stay in one
partition, in order.

    with Publisher(settings) as publisher:
        publisher.publish({"specversion": "1.0", "type": "item.viewed", ...})
    print(publisher.report.delivered)

``Publisher(settings, hash_contacts=True)`` sends phone numbers and e-mail addresses as
the keyed hashes the engine keeps (storefront/contacts.py), never in clear.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import TracebackType
from typing import Any, Self

import orjson
from confluent_kafka import KafkaError as RdKafkaError
from confluent_kafka import KafkaException as RdKafkaException
from confluent_kafka import Message, Producer

from crmstream.errors import KafkaError
from crmstream.settings import Settings
from crmstream.topics import TopicNames
from schemas.decode import Decoder
from schemas.events import STREAM_OF_TYPE, Envelope
from storefront.contacts import required_key, without_clear_contacts

_log = logging.getLogger("crmstream.publisher")


def stream_of(event_type: str) -> str:
    """The event stream (topic suffix) that carries ``event_type``."""
    try:
        return STREAM_OF_TYPE[event_type]
    except KeyError:
        raise KafkaError(f"no event topic carries type {event_type!r}") from None


def partition_key(event: Mapping[str, Any] | Envelope) -> bytes:
    if isinstance(event, Envelope):
        return f"{event.shop}:{event.who}".encode()
    who = event.get("subject") or event.get("anonymousid") or ""
    return f"{event.get('shop', '')}:{who}".encode()


def _json_default(value: object) -> str:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def encode(event: Mapping[str, Any] | Envelope) -> bytes:
    """The JSON bytes of an event (money as decimal strings)."""
    if isinstance(event, Envelope):
        return event.model_dump_json(exclude_none=True).encode()
    return orjson.dumps(event, default=_json_default)


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
    """Validates and sends events to their topic. Leaving the ``with`` block flushes."""

    def __init__(
        self,
        settings: Settings,
        *,
        hash_contacts: bool = False,
        producer: Mapping[str, str | int | float | bool] | None = None,
    ) -> None:
        """``producer``: librdkafka settings over the publisher's own."""
        self.topics = TopicNames.from_settings(settings.topics)
        # Checked before anything is sent: without the key no event could go out hashed.
        self._contacts_key = required_key(settings.privacy_hash_key()) if hash_contacts else None
        self.decoder = Decoder(
            max_bytes=settings.ingest.max_event_bytes,
            future_skew=timedelta(seconds=settings.ingest.future_skew_s),
        )
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
        conf.update(producer or {})
        self._producer = Producer(conf)
        self.report = DeliveryReport()

    def connect(self, timeout_s: float = 10.0) -> None:
        """Wait until the broker has answered: a long-lived storefront producer is
        connected already when its traffic comes."""
        try:
            self._producer.list_topics(timeout=timeout_s)
        except RdKafkaException as exc:
            raise KafkaError(f"the broker did not answer within {timeout_s:.0f}s: {exc}") from exc

    def publish(self, event: Mapping[str, Any] | Envelope) -> Envelope:
        """Validate one event and queue it; raises InvalidEventError for a bad one."""
        return self.publish_json(encode(event))

    def publish_json(self, value: bytes) -> Envelope:
        """Validate one event given as JSON bytes and queue those very bytes (with contact
        details hashed, if asked)."""
        valid = self.decoder.require(value, self.decoder.not_after(datetime.now(UTC)))
        self.publish_valid(valid, value)
        return valid

    def publish_valid(self, valid: Envelope, value: bytes) -> None:
        """Queue the JSON bytes ``valid`` was decoded from, checked already (with contact
        details hashed, if asked)."""
        self.publish_raw(*self.outgoing(valid, value))

    def outgoing(self, valid: Envelope, value: bytes) -> tuple[str, bytes, bytes]:
        """Where the JSON bytes ``valid`` was decoded from go, under which key, and the
        bytes that go (with contact details hashed, if asked): for ``publish_raw``."""
        if self._contacts_key is not None:
            value = without_clear_contacts(value, valid, self._contacts_key)
        return self.topics.event(valid.stream), partition_key(valid), value

    def publish_raw(self, topic: str, key: bytes | None, value: bytes) -> None:
        """Queue bytes as they are, unvalidated: for replays and for testing the DLQ."""
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
