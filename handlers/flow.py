"""Counts of events taken in: per stream in total (the end-to-end signal the demo shows),
and per shop and minute for the last day (the console's overview charts)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Final

import redis.asyncio
from redis.asyncio.client import Pipeline

from crmstream.settings import Settings
from handlers.keys import Keys
from handlers.redis_client import connect
from schemas.events import STREAM_OF_TYPE, Envelope

# Flow fields "duplicate:<stream>": events of the stream taken in that were repeats.
DUPLICATE: Final = "duplicate:"


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


def count_flow(
    pipe: Pipeline,
    key: str,
    streams: Iterable[str],
    duplicates: Mapping[str, int] | None = None,
) -> bool:
    """Queue one batch's counts per stream on ``pipe``, and of its events by type, how many
    were duplicates (as "duplicate:<stream>"); False if there is nothing to count."""
    counts = Counter(streams)
    for stream, count in counts.items():
        pipe.hincrby(key, stream, count)
    repeats: Counter[str] = Counter()
    for kind, count in (duplicates or {}).items():
        repeats[STREAM_OF_TYPE[kind]] += count
    for stream, count in repeats.items():
        pipe.hincrby(key, DUPLICATE + stream, count)
    return bool(counts)


def flow_counts(raw: Mapping[bytes | str, bytes | str]) -> Counter[str]:
    """The flow hash as read back (HGETALL), with text keys and integer counts."""
    return Counter({(k.decode() if isinstance(k, bytes) else k): int(v) for k, v in raw.items()})


def events_taken(counts: Mapping[str, int]) -> int:
    """Every event taken in, repeats included (the flow hash without its duplicate counts)."""
    return sum(count for field, count in counts.items() if not field.startswith(DUPLICATE))


# A shop's minutes are kept a day and a little more; one hash per shop and hour.
_MINUTES_KEPT_S: Final = 26 * 3600


def count_shop_minutes(pipe: Pipeline, keys: Keys, shops: Iterable[str], now_s: float) -> None:
    """Queue one batch's events per shop, counted in the minute they were taken in."""
    hour, minute = divmod(int(now_s) // 60, 60)
    for shop, count in Counter(shops).items():
        key = keys.shop_minutes(shop, hour)
        pipe.hincrby(key, str(minute), count)
        pipe.expire(key, _MINUTES_KEPT_S)


async def shop_minutes(
    client: redis.asyncio.Redis, keys: Keys, shop: str, now_s: float, hours: int = 24
) -> dict[int, int]:
    """Epoch minute → events taken in for ``shop``, over the last ``hours`` hours."""
    this_hour = int(now_s) // 3600
    pipe = client.pipeline(transaction=False)
    for hour in range(this_hour - hours + 1, this_hour + 1):
        pipe.hgetall(keys.shop_minutes(shop, hour))
    counts: dict[int, int] = {}
    for hour, found in zip(
        range(this_hour - hours + 1, this_hour + 1), await pipe.execute(), strict=True
    ):
        for minute, count in found.items():
            counts[hour * 60 + int(minute)] = int(count)
    return counts
