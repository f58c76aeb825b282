"""Event sinks for tests, loaded by a real worker process through CRMSTREAM_WORKER_EVENT_SINK."""

from __future__ import annotations

from collections.abc import Sequence

from crmstream.settings import Settings
from handlers.redis_client import RedisClient, connect
from schemas.events import Envelope


def accepted_key(settings: Settings) -> str:
    return f"{settings.redis.key_prefix}:test:accepted"


class RecordingSink:
    """Records the id of every event handed over, in one Redis round trip per batch."""

    def __init__(self, client: RedisClient, key: str) -> None:
        self.client = client
        self.key = key

    @classmethod
    def from_settings(cls, settings: Settings) -> RecordingSink:
        return cls(connect(settings.redis), accepted_key(settings))

    async def handle(
        self, events: Sequence[Envelope], partitions: Sequence[int] | None = None
    ) -> None:
        pipe = self.client.pipeline(transaction=False)
        pipe.sadd(self.key, *(event.id for event in events))
        # Counts every hand-over too: a duplicate delivery would show as more than the set.
        pipe.incrby(self.key + ":count", len(events))
        await pipe.execute()

    async def close(self) -> None:
        await self.client.aclose()
