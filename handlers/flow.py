"""Counts of events taken in, per stream: the end-to-end signal the demo shows."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping

import redis.asyncio

from handlers.keys import Keys


class FlowRecorder:
    """Adds one batch's counts to Redis in a single round trip."""

    def __init__(self, client: redis.asyncio.Redis, keys: Keys) -> None:
        self._client = client
        self._key = keys.flow

    async def record(self, streams: Iterable[str]) -> None:
        counts = Counter(streams)
        if not counts:
            return
        pipe = self._client.pipeline(transaction=False)
        for stream, count in counts.items():
            pipe.hincrby(self._key, stream, count)
        await pipe.execute()


def flow_counts(raw: Mapping[bytes | str, bytes | str]) -> Counter[str]:
    """The flow hash as read back (HGETALL), with text keys and integer counts."""
    return Counter({(k.decode() if isinstance(k, bytes) else k): int(v) for k, v in raw.items()})
