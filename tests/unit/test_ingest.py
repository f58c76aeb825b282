"""The ingest step on its own: what goes where, and a failing sink is retried, not skipped."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import orjson

from crmstream.settings import Settings
from schemas.decode import Rejected
from schemas.errors import Reason
from schemas.events import STREAM_OF_TYPE, Envelope
from storefront.publisher import partition_key
from storefront.simulator import Simulator
from streams.dead_letters import DeadLetters
from streams.ingest import Ingest


@dataclass
class FakeRecord:
    topic: str
    key: bytes | None
    value: bytes | None
    partition: int = 0
    offset: int = 0
    timestamp: int = 0
    timestamp_type: int = 0
    headers: list[tuple[str, bytes]] = field(default_factory=list)


@dataclass
class FlakySink:
    failures_left: int = 1
    batches: list[list[str]] = field(default_factory=list)

    async def handle(
        self, events: Sequence[Envelope], partitions: Sequence[int] | None = None
    ) -> None:
        if self.failures_left:
            self.failures_left -= 1
            raise ConnectionError("redis went away")
        self.batches.append([event.id for event in events])

    async def close(self) -> None:
        pass


class FakeDeadLetters:
    def __init__(self) -> None:
        self.sent: list[tuple[Any, Rejected]] = []

    async def send(self, refused: Sequence[tuple[Any, Rejected]]) -> None:
        self.sent.extend(refused)


async def test_valid_to_the_sink_after_a_retry_invalid_to_dead_letters() -> None:
    events = list(Simulator().events(50))
    batch = [
        FakeRecord(f"crm.events.{STREAM_OF_TYPE[e['type']]}", partition_key(e),
                   orjson.dumps(e), offset=n)
        for n, e in enumerate(events)
    ]  # fmt: skip
    batch.append(FakeRecord("crm.events.cart", b"s:c", None, offset=50))
    batch.append(FakeRecord("crm.events.cart", b"s:c", b"[]", offset=51))
    sink = FlakySink()
    dead = FakeDeadLetters()
    ingest = Ingest(Settings(), sink, cast(DeadLetters, dead))

    await ingest.process(batch)

    assert sink.batches == [[e["id"] for e in events]]
    assert [(m.offset, r.reason) for m, r in dead.sent] == [
        (50, Reason.NOT_JSON),
        (51, Reason.NOT_OBJECT),
    ]
