"""The dead-letter topic: every refused message, its original key and bytes, and why."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Final

import faust
import orjson

from schemas.decode import Rejected
from schemas.types import is_shop_id
from streams.records import Record

log = logging.getLogger("crmstream.dlq")

# Header names on every dead letter; consumers of crm.dlq can rely on them.
REASON: Final = "crm.error.reason"
MESSAGE: Final = "crm.error.message"
SOURCE_TOPIC: Final = "crm.source.topic"
SOURCE_PARTITION: Final = "crm.source.partition"
SOURCE_OFFSET: Final = "crm.source.offset"
SOURCE_TIMESTAMP: Final = "crm.source.timestamp"
DEAD_LETTERED_AT: Final = "crm.dead_lettered_at"
# A message larger than this is not parsed for the shop it names (it is counted nowhere).
_PARSED_AT_MOST: Final = 64 * 1024


def position(record: Record) -> str:
    """topic[partition]@offset, the way every log line names a message."""
    return f"{record.topic}[{record.partition}]@{record.offset}"


def _headers(message: Record, rejected: Rejected, now: str) -> list[tuple[str, bytes]]:
    original = [(str(name), _as_bytes(value)) for name, value in message.headers or ()]
    return [
        *original,
        (REASON, rejected.reason.value.encode()),
        (MESSAGE, rejected.message.encode()),
        (SOURCE_TOPIC, message.topic.encode()),
        (SOURCE_PARTITION, str(message.partition).encode()),
        (SOURCE_OFFSET, str(message.offset).encode()),
        (SOURCE_TIMESTAMP, str(message.timestamp).encode()),
        (DEAD_LETTERED_AT, now.encode()),
    ]


def _as_bytes(value: object) -> bytes:
    if isinstance(value, bytes):
        return value
    return str(value).encode()


def shop_named(value: bytes | None) -> str | None:
    """The shop a refused message names, when it is JSON that names a valid one."""
    if not value or len(value) > _PARSED_AT_MOST:
        return None
    try:
        document = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    shop = document.get("shop") if isinstance(document, dict) else None
    return shop if isinstance(shop, str) and is_shop_id(shop) else None


class DeadLetters:
    """Sends refused messages to the dead-letter topic and waits for the broker's ack;
    then ``counts`` those that name a shop (the console's charts)."""

    def __init__(
        self,
        topic: faust.TopicT,
        counts: Callable[[list[str]], Awaitable[None]] | None = None,
    ) -> None:
        self._topic = topic
        self._counts = counts

    async def send(self, refused: Sequence[tuple[Record, Rejected]]) -> None:
        if not refused:
            return
        now = datetime.now(UTC).isoformat()
        pending = [
            # force: send now, not when the source event is acked, so that we can wait for it.
            await self._topic.send(
                key=message.key,
                value=message.value,
                headers=_headers(message, rejected, now),
                force=True,
            )
            for message, rejected in refused
        ]
        # Offsets move on only after the broker has every dead letter of the batch.
        await asyncio.gather(*pending)
        if self._counts is not None:
            named = [shop for message, _ in refused if (shop := shop_named(message.value))]
            if named:
                await self._counts(named)
        reasons = Counter(rejected.reason.value for _, rejected in refused)
        first_message, first = refused[0]
        log.warning(
            "dead-lettered %d message(s) %s; first at %s: %s",
            len(refused),
            dict(reasons),
            position(first_message),
            first.message,
            extra={
                "topic": first_message.topic,
                "partition": first_message.partition,
                "offset": first_message.offset,
            },
        )
