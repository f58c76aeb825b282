"""The offsets each partition's state reflects, kept in Redis with that state.

A batch's effects are written first and its offsets last (functions/offsets.lua), so
the offsets Redis holds never run ahead of its state, whatever it lost. A worker
resumes a partition from what Redis holds, and checks before every batch that
Redis still holds what it recorded last: a Redis that lost recent writes is read
up to date again from Kafka (:class:`~crmstream.errors.StateBehindError`), not
silently skipped. Kafka's committed offsets follow, for lag monitoring and tools.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from crmstream.errors import StateBehindError
from handlers.functions import FunctionLibrary
from handlers.functions.offsets import LIBRARY, Advance, AdvanceReply, TopicOffsets
from handlers.functions.timers import Fence
from handlers.keys import Keys
from handlers.redis_client import RedisClient, slot_groups
from handlers.replication import Replication

TopicPartition = tuple[str, int]


class OffsetStore:
    def __init__(
        self, client: RedisClient, keys: Keys, replication: Replication | None = None
    ) -> None:
        self._client = client
        self._keys = keys
        # Offsets go down only once replicas hold the effects (a failover keeps both or
        # neither; handlers/replication.py).
        self._replication = replication
        self._library = FunctionLibrary(client, LIBRARY, "offsets")
        # What this worker last recorded (or resumed from) per partition: what Redis must
        # still hold for the next batch to go on from there.
        self._expected: dict[TopicPartition, int | None] = {}

    async def resume(self, partitions: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        """Where to read the newly assigned ``partitions`` from: the offsets Redis holds
        (partitions it holds none for are not in the answer: Kafka's committed offset,
        or the start, is theirs)."""
        wanted = list(partitions)
        pipe = self._client.pipeline(transaction=False)
        for topic, partition in wanted:
            pipe.hget(self._keys.partition(partition).offsets, topic)
        held = await pipe.execute()
        found: dict[TopicPartition, int] = {}
        for tp, value in zip(wanted, held, strict=True):
            self._expected[tp] = None if value is None else int(value)
            if value is not None:
                found[tp] = int(value)
        return found

    def fence(self, partition: int) -> list[Fence]:
        """The offset last recorded of each topic of ``partition``: what a timer walk checks
        Redis still holds before it decides (timers.lua: state_holds)."""
        return [
            Fence(topic, "" if at is None else str(at))
            for (topic, number), at in self._expected.items()
            if number == partition
        ]

    def forget(self, partitions: Iterable[TopicPartition]) -> None:
        """These partitions went to another worker: it keeps their offsets now."""
        for tp in partitions:
            self._expected.pop(tp, None)

    async def check(self, partitions: Iterable[TopicPartition]) -> None:
        """Before a batch: Redis still holds what this worker recorded last; raises
        StateBehindError naming where to read again from if it does not."""
        await self._advance({tp: self._expected.get(tp) for tp in partitions}, check_only=True)

    async def record(self, offsets: Mapping[TopicPartition, int]) -> None:
        """After a batch's effects: the next offset of each of its partitions."""
        if self._replication is not None:
            await self._replication.settle()
        await self._advance(offsets, check_only=False)
        self._expected.update(offsets)

    async def _advance(
        self, offsets: Mapping[TopicPartition, int | None], *, check_only: bool
    ) -> None:
        topics: list[TopicOffsets] = []
        for (topic, partition), at in offsets.items():
            expected = self._expected.get((topic, partition))
            held = "" if expected is None else str(expected)
            following = held if check_only or at is None else str(at)
            offsets_key = self._keys.partition(partition).offsets
            topics.append(TopicOffsets(offsets_key, partition, topic, held, following))
        groups = slot_groups(self._client, [t.offsets for t in topics])
        calls = [Advance([topics[position] for position in group]) for group in groups]
        behind: dict[TopicPartition, int] = {}
        replies: list[AdvanceReply] = await self._library.run(calls)
        for reply in replies:
            for differ in reply.differ:
                # Nothing held at all: this Redis lost everything, so read it all again.
                behind[differ.topic, differ.partition] = int(differ.held) if differ.held else 0
        if behind:
            for tp, at in behind.items():
                self._expected[tp] = at if at else None
            raise StateBehindError(behind)
