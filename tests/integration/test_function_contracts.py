"""Every Function call and reply holds to the one contract its Python module writes.

Three ways one side could drift from the other, each caught here:
- Lua reads a name Python does not send, or Python sends one that Lua never reads: the
  first fails where it is read (read_call's tables answer only to the layout's names),
  the second is found by reading the Lua source for every name;
- a reply gains or loses a field on one side: Lua's ``reply`` refuses a field missing or
  unknown, and Python's decode refuses a reply of another length;
- a call with an argument missing or extra: refused by the Function, not read as zero.
Each call then makes the round trip on a real Redis: Python's encoder, the Function,
Python's decoder.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import fields

import pytest
from redis.exceptions import ResponseError

from crmstream.settings import Settings
from handlers.functions import FunctionLibrary, Library
from handlers.functions.contract import Call, layout_of
from handlers.functions.library import lua_sources
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
from handlers.triggers.members import arm_op, timer_member, timer_value

LIBRARIES = [OFFSETS, SEGMENTS, TIMERS]


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[RedisClient]:
    redis = connect(settings.redis)
    yield redis
    await redis.aclose()


@pytest.mark.parametrize("library", LIBRARIES, ids=lambda library: library.name)
def test_lua_reads_every_name_python_sends(library: Library) -> None:
    lua = lua_sources(library)
    for call in library.calls:
        layout = layout_of(call)
        names = [*layout.keys, *(name for name, _ in layout.args)]
        if layout.item is not None:
            names += [*layout.item.keys, *(name for name, _ in layout.item.args)]
        unread = [name for name in names if not re.search(rf"\.{name}\b", lua)]
        assert unread == [], f"{call.FUNCTION} sends what Lua never reads: {unread}"
        assert re.search(rf"\bfunction {call.LUA}\(", lua), call.LUA


@pytest.mark.parametrize("library", LIBRARIES, ids=lambda library: library.name)
async def test_every_library_loads(client: RedisClient, library: Library) -> None:
    await FunctionLibrary(client, library, library.name).load()
    (listed,) = await client.function_list(library=library.name)
    fields = dict(zip(listed[::2], listed[1::2], strict=True))
    assert fields[b"library_name"].decode() == library.name
    registered = {dict(zip(f[::2], f[1::2], strict=True))[b"name"] for f in fields[b"functions"]}
    assert registered == {library.function(call).encode() for call in library.calls}


async def test_advance_round_trip(settings: Settings, client: RedisClient) -> None:
    offsets = Keys(settings.redis.key_prefix).partition(0).offsets
    library = FunctionLibrary(client, OFFSETS, "offsets")
    record = Advance(offsets, [TopicOffsets("a", "", "10"), TopicOffsets("b", "", "4")])
    assert await library.run([record]) == [AdvanceReply(differ=[])]
    assert await client.hgetall(offsets) == {b"a": b"10", b"b": b"4"}
    stale = Advance(offsets, [TopicOffsets("a", "9", "12"), TopicOffsets("b", "4", "5")])
    assert await library.run([stale]) == [AdvanceReply(differ=[Held("a", "10")])]
    assert await client.hgetall(offsets) == {b"a": b"10", b"b": b"4"}  # nothing written


async def test_segments_round_trip(settings: Settings, client: RedisClient) -> None:
    keys = Keys(settings.redis.key_prefix)
    base = keys.trigger_shard("s1", "c1")
    library = FunctionLibrary(client, SEGMENTS, "segments")
    call = ApplySegments(
        base,
        "vip:1,north:2",
        [CustomerSegments("s1", "c1", 1_000, 900, "1-", "e1", forget=False)],
    )
    assert await library.run([call]) == [SegmentsReply(changes=1)]
    assert await library.run([call]) == [SegmentsReply(changes=0)]  # delivered again
    assert await client.hgetall(keys.segment_memberships("s1", "c1")) == {b"vip": b"1"}
    ((_id, entry),) = await client.xrange(keys.segment_outbox(base)) or []
    assert entry is not None
    assert (entry[b"change"], entry[b"version"]) == (b"entered", b"1")
    gone = CustomerSegments("s1", "c1", 2_000, 0, "00", "erasure", forget=True)
    assert await library.run([ApplySegments(base, "vip:1,north:2", [gone])]) == [
        SegmentsReply(changes=1)
    ]
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


@pytest.mark.parametrize("change", ["one argument missing", "one argument extra"])
async def test_a_call_that_does_not_fit_its_layout_is_refused(
    settings: Settings, client: RedisClient, change: str
) -> None:
    offsets = Keys(settings.redis.key_prefix).partition(0).offsets
    keys, args = Advance(offsets, [TopicOffsets("a", "", "10")]).encode()
    args = args[:-1] if change == "one argument missing" else [*args, "11"]
    await FunctionLibrary(client, OFFSETS, "offsets").load()
    with pytest.raises(ResponseError, match="do not fit its layout"):
        await client.fcall(OFFSETS.function(Advance), len(keys), *keys, *args)
    assert not await client.exists(offsets)


def test_every_reply_field_is_decoded_by_name() -> None:
    assert [f.name for f in fields(AdvanceReply)] == ["differ"]
    assert AdvanceReply.decode([[[b"a", b"10"]]]) == AdvanceReply([Held("a", "10")])
    with pytest.raises(ValueError, match="2 values for 1 fields"):
        AdvanceReply.decode([[], []])


def test_calls_lay_themselves_out_by_their_fields() -> None:
    call: Call = Advance("k", [TopicOffsets("a", "1", "2"), TopicOffsets("b", "", "3")])
    assert call.encode() == (["k"], ["a", "1", "2", "b", "", "3"])
