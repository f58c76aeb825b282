"""What waits in Redis, for the gauges an SRE watches: outboxes, timers, held triggers and
segment sizes. One round trip, whatever the number of customers."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from handlers.keys import Keys
from handlers.redis_client import RedisClient


@dataclass
class Backlog:
    outbox: dict[str, int] = field(default_factory=dict)  # outbox → entries
    oldest_age_s: dict[str, float] = field(default_factory=dict)  # outbox → oldest entry's age
    timers: int = 0
    held: int = 0
    segments: Counter[str] = field(default_factory=Counter)  # every shop together


async def read_backlog(client: RedisClient, keys: Keys, now_ms: int, partitions: int) -> Backlog:
    """``partitions``: how many partitions each event topic has (each keeps its timers)."""
    outboxes = {"triggers": keys.outbox, "segments": keys.segment_outbox}
    bases = keys.trigger_shards()
    pipe = client.pipeline(transaction=False)
    for base in bases:
        for outbox in outboxes.values():
            pipe.xlen(outbox(base))
            pipe.xrange(outbox(base), count=1)
        pipe.zcard(keys.held(base))
        pipe.hgetall(keys.segment_sizes(base, ""))
    for partition in range(partitions):
        pipe.zcard(keys.partition(partition).timers)
    replies = iter(await pipe.execute())
    backlog = Backlog(outbox=dict.fromkeys(outboxes, 0), oldest_age_s=dict.fromkeys(outboxes, 0.0))
    for _base in bases:
        for name in outboxes:
            backlog.outbox[name] += int(next(replies))
            first = next(replies)
            if first:
                entry_id = first[0][0]
                born_ms = int(
                    (entry_id.decode() if isinstance(entry_id, bytes) else entry_id).split("-")[0]
                )
                age = max(0.0, (now_ms - born_ms) / 1000)
                backlog.oldest_age_s[name] = max(backlog.oldest_age_s[name], age)
        backlog.held += int(next(replies))
        for segment, size in next(replies).items():
            backlog.segments[segment.decode()] += int(size)
    backlog.timers = sum(int(next(replies)) for _ in range(partitions))
    return backlog


async def read_sizes_by_shop(client: RedisClient, keys: Keys) -> Counter[tuple[str, str]]:
    """Segment sizes per shop: a scan of each shard's size hashes, one per shop. For the
    per-shop metric only, which a deployment turns on when its shops are few."""
    sizes: Counter[tuple[str, str]] = Counter()
    for base in keys.trigger_shards():
        prefix = keys.segment_sizes(base, "")
        async for key in client.scan_iter(match=prefix + "?*", count=1000):
            shop = (key.decode() if isinstance(key, bytes) else key)[len(prefix) :]
            for segment, size in (await client.hgetall(key)).items():
                sizes[shop, segment.decode() if isinstance(segment, bytes) else segment] += int(
                    size
                )
    return sizes
