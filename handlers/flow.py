"""Counts of events taken in, per stream: the end-to-end signal the demo shows."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

import redis.asyncio
from redis.asyncio.client import Pipeline

from crmstream.settings import Settings
from handlers.keys import Keys
from handlers.redis_client import connect
from schemas.events import Envelope


class FlowRecorder:
    """An event sink that adds one batch's counts per stream to Redis in a single round trip."""

    def __init__(self, client: redis.asyncio.Redis, keys: Keys) -> None:
        self._client = client
        self._key = keys.flow

    @classmethod
    def from_settings(cls, settings: Settings) -> FlowRecorder:
        return cls(connect(settings.redis), Keys(settings.redis.key_prefix))

    async def handle(
        self, events: Sequence[Envelope], partitions: Sequence[int] | None = None
    ) -> None:
        await self.record(event.stream for event in events)

    async def record(self, streams: Iterable[str]) -> None:
        pipe = self._client.pipeline(transaction=False)
        if count_flow(pipe, self._key, streams):
            await pipe.execute()

    async def close(self) -> None:
        await self._client.aclose()


def count_flow(pipe: Pipeline, key: str, streams: Iterable[str]) -> bool:
    """Queue one batch's counts per stream on ``pipe``; False if there is nothing to count."""
    counts = Counter(streams)
    for stream, count in counts.items():
        pipe.hincrby(key, stream, count)
    return bool(counts)


def flow_counts(raw: Mapping[bytes | str, bytes | str]) -> Counter[str]:
    """The flow hash as read back (HGETALL), with text keys and integer counts."""
    return Counter({(k.decode() if isinstance(k, bytes) else k): int(v) for k, v in raw.items()})
