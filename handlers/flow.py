"""Counts of events taken in: per stream in total (the end-to-end signal the demo shows),
and per shop and minute for the last day (the console's overview charts)."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Final

from redis.asyncio.client import Pipeline
from redis.asyncio.cluster import ClusterPipeline
from redis.exceptions import RedisError

from crmstream.settings import Settings
from handlers.keys import Keys
from handlers.redis_client import RedisClient, connect
from schemas.events import STREAM_OF_TYPE, Envelope

log = logging.getLogger("crmstream.flow")

# Flow fields "duplicate:<stream>": events of the stream taken in that were repeats.
DUPLICATE: Final = "duplicate:"


class FlowRecorder:
    """An event sink that adds one batch's counts per stream to Redis in a single round trip."""

    def __init__(self, client: RedisClient, keys: Keys) -> None:
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
    pipe: Pipeline | ClusterPipeline,
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


def count_shop_minutes(
    pipe: Pipeline | ClusterPipeline,
    keys: Keys,
    shops: Iterable[str],
    now_s: float,
    key_of: Callable[[str, int], str] | None = None,
) -> None:
    """Queue one batch's events per shop, counted in the minute they were taken in (or,
    with ``key_of``, whatever else is counted per shop and minute: dead letters)."""
    hour, minute = divmod(int(now_s) // 60, 60)
    for shop, count in Counter(shops).items():
        key = (key_of or keys.shop_minutes)(shop, hour)
        pipe.hincrby(key, str(minute), count)
        pipe.expire(key, _MINUTES_KEPT_S)


async def shop_minutes(
    client: RedisClient,
    keys: Keys,
    shop: str,
    now_s: float,
    key_of: Callable[[str, int], str] | None = None,
) -> dict[int, int]:
    """Epoch minute → events taken in for ``shop`` (or what ``key_of`` counts), over the
    last day."""
    hours = range(int(now_s) // 3600 - 23, int(now_s) // 3600 + 1)
    pipe = client.pipeline(transaction=False)
    for hour in hours:
        pipe.hgetall((key_of or keys.shop_minutes)(shop, hour))
    counts: dict[int, int] = {}
    for hour, found in zip(hours, await pipe.execute(), strict=True):
        for minute, count in found.items():
            counts[hour * 60 + int(minute)] = int(count)
    return counts


async def trigger_minutes(
    client: RedisClient, keys: Keys, shop: str, now_s: float
) -> dict[tuple[str, int], int]:
    """(outcome, epoch minute) → ``shop``'s trigger decisions over the last day, every
    rule and shard together."""
    hours = range(int(now_s) // 3600 - 23, int(now_s) // 3600 + 1)
    pipe = client.pipeline(transaction=False)
    for base in keys.trigger_shards():
        for hour in hours:
            pipe.hgetall(keys.trigger_minutes(base, shop, hour))
    counts: Counter[tuple[str, int]] = Counter()
    replies = iter(await pipe.execute())
    for _base in keys.trigger_shards():
        for hour in hours:
            for field, count in next(replies).items():
                _rule, outcome, minute = field.decode().split("\x1f")
                counts[(outcome, hour * 60 + int(minute))] += int(count)
    return dict(counts)


class DeadLetterCounts:
    """Counts dead letters per shop and minute; a Redis that does not answer costs the
    count, never the dead letter (it is in the topic already)."""

    def __init__(self, client: RedisClient, keys: Keys) -> None:
        self._client = client
        self._keys = keys

    async def __call__(self, shops: list[str]) -> None:
        pipe = self._client.pipeline(transaction=False)
        count_shop_minutes(pipe, self._keys, shops, time.time(), self._keys.dead_letter_minutes)
        try:
            await pipe.execute()
        except (RedisError, OSError) as exc:
            log.warning("dead letters not counted for the console: %s", exc)

    async def close(self) -> None:
        await self._client.aclose()
