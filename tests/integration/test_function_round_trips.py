"""Every Function call makes the round trip: Python's encoder, the Function on a real Redis,
Python's decoder; and what it did to Redis is what the call says."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from crmstream.settings import Settings
from handlers.functions import FunctionLibrary
from handlers.functions.offsets import LIBRARY as OFFSETS
from handlers.functions.offsets import Advance, AdvanceReply, Held, TopicOffsets
from handlers.functions.segments import LIBRARY as SEGMENTS
from handlers.functions.segments import ApplySegments, CustomerSegments, SegmentsReply
from handlers.functions.timers import LIBRARY as TIMERS
from handlers.functions.timers import (
    Arm,
    Count,
    Decided,
    Done,
    Due,
    DueEntry,
    DueReply,
    Fence,
    LetGo,
    PutOff,
)
from handlers.keys import Keys
from handlers.redis_client import RedisClient, connect
from handlers.timing.members import arm_op, timer_member, timer_value


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[RedisClient]:
    redis = connect(settings.redis)
    yield redis
    await redis.aclose()


async def test_advance_round_trip(settings: Settings, client: RedisClient) -> None:
    offsets = Keys(settings.redis.key_prefix).partition(0).offsets
    library = FunctionLibrary(client, OFFSETS, "offsets")
    record = Advance(
        [TopicOffsets(offsets, 0, "a", "", "10"), TopicOffsets(offsets, 0, "b", "", "4")]
    )
    assert await library.run([record]) == [AdvanceReply(differ=[])]
    assert await client.hgetall(offsets) == {b"a": b"10", b"b": b"4"}
    stale = Advance(
        [TopicOffsets(offsets, 0, "a", "9", "12"), TopicOffsets(offsets, 0, "b", "4", "5")]
    )
    assert await library.run([stale]) == [AdvanceReply(differ=[Held(0, "a", "10")])]
    assert await client.hgetall(offsets) == {b"a": b"10", b"b": b"4"}  # nothing written


async def test_segments_round_trip(settings: Settings, client: RedisClient) -> None:
    keys = Keys(settings.redis.key_prefix)
    base = keys.trigger_shard("s1", "c1")
    library = FunctionLibrary(client, SEGMENTS, "segments")
    call = ApplySegments(
        "vip:1,north:2",
        [CustomerSegments(base, "s1", "c1", 1_000, 900, "1-", "e1", forget=False)],
    )
    assert await library.run([call]) == [SegmentsReply(changes=1)]
    assert await library.run([call]) == [SegmentsReply(changes=0)]  # delivered again
    assert await client.hgetall(keys.segment_memberships("s1", "c1")) == {b"vip": b"1"}
    ((_id, entry),) = await client.xrange(keys.segment_outbox(base)) or []
    assert entry is not None
    assert (entry[b"change"], entry[b"version"]) == (b"entered", b"1")
    gone = CustomerSegments(base, "s1", "c1", 2_000, 0, "00", "erasure", forget=True)
    assert await library.run([ApplySegments("vip:1,north:2", [gone])]) == [SegmentsReply(changes=1)]
    assert not await client.exists(keys.segment_memberships("s1", "c1"))


async def test_timers_round_trip(settings: Settings, client: RedisClient) -> None:
    partition = Keys(settings.redis.key_prefix).partition(3)
    library = FunctionLibrary(client, TIMERS, "timers")
    member = timer_member("abandoned", "s1", "c1")
    value = timer_value(2_000, 1_000, {"armed_by": "e1"})
    arm = arm_op(member, value, rearm=True, event_id="e1")
    decision = PutOff("e\x1fwelcome\x1fs1\x1fc1\x1fe2", 1_500, timer_value(1_500, 1_500, {}))
    assert await library.run([Arm(partition, [arm, decision])]) == [Count(2)]
    walk = Due(partition, now_ms=5_000, limit=10, worker="w1", hold_ms=5_000, fence=[])
    (due,) = await library.run([walk])
    assert due == DueReply(
        [DueEntry(decision.member, decision.value), DueEntry(member, value)],
        cut_short=False, state_lost=False, waiting=2, cancelled=0,  # both taken, until done
    )  # fmt: skip
    # Another walker is kept out while the first holds the partition.
    (other,) = await library.run([Due(partition, 5_000, 10, "w2", 5_000, [Fence("t", "")])])
    assert other.entries == []
    decided = [Decided(decision.member, 1_500), Decided(member, 2_000)]
    assert await library.run([Done(partition, decided)]) == [Count(2)]
    assert await library.run([LetGo(partition, "w2"), LetGo(partition, "w1")]) == [
        Count(0), Count(1),
    ]  # fmt: skip
    assert not await client.exists(partition.taken, partition.timers, partition.later)
