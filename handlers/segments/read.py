"""Reading groups: sizes, member pages and one customer's segments, straight from Redis.

Sizes are counters the segment Function keeps, one hash per shard and shop: a
shop's sizes cost 16 small reads whatever its number of customers. Member lists
are sorted sets ordered by customer id, so a page continues after the last id
of the one before: a customer who stays in the segment is listed exactly once,
in order, however the membership changes while a client pages through it.
"""

from __future__ import annotations

import heapq
from collections import Counter
from dataclasses import dataclass

from handlers.keys import Keys
from handlers.redis_client import RedisClient


@dataclass(frozen=True, slots=True)
class MemberPage:
    members: list[str]
    cursor: str | None  # where the next page starts; None once the segment is exhausted


class SegmentReader:
    def __init__(self, client: RedisClient, keys: Keys) -> None:
        self._client = client
        self._keys = keys

    async def sizes(self, shop: str) -> dict[str, int]:
        pipe = self._client.pipeline(transaction=False)
        for base in self._keys.trigger_shards():
            pipe.hgetall(self._keys.segment_sizes(base, shop))
        totals: Counter[str] = Counter()
        for reply in await pipe.execute():
            for segment, size in reply.items():
                totals[segment.decode()] += int(size)
        return dict(sorted(totals.items()))

    async def members(
        self, shop: str, segment: str, cursor: str | None = None, limit: int = 100
    ) -> MemberPage:
        """Up to ``limit`` members after ``cursor`` (a customer id), in id order."""
        start = b"-" if not cursor else b"(" + cursor.encode()
        pipe = self._client.pipeline(transaction=False)
        for base in self._keys.trigger_shards():
            key = self._keys.segment_members(base, shop, segment)
            # One more than asked: whether a next page exists is known without another read.
            pipe.zrangebylex(key, start, b"+", start=0, num=limit + 1)
        merged = list(heapq.merge(*await pipe.execute()))
        page = [member.decode() for member in merged[:limit]]
        more = len(merged) > limit
        return MemberPage(page, page[-1] if more and page else None)

    async def of_customer(self, shop: str, customer: str) -> list[str]:
        """The segments a customer is in now."""
        counts = await self._client.hgetall(self._keys.segment_memberships(shop, customer))
        return sorted(_text(segment) for segment, count in counts.items() if int(count) % 2 == 1)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
