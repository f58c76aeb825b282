"""Every Function call and reply holds to the one contract its Python module writes.

Three ways one side could drift from the other, each caught here:
- Lua reads a name Python does not send, or Python sends one that Lua never reads: the
  first fails where it is read (read_call's tables answer only to the layout's names),
  the second is found by reading the Lua source for every name;
- a reply gains or loses a field on one side: Lua's ``reply`` refuses a field missing or
  unknown, and Python's decode refuses a reply of another length;
- a call with an argument missing or extra, or one of the wrong kind: refused by the
  Function, naming it, not read as zero.
Each call then makes the round trip on a real Redis: Python's encoder, the Function,
Python's decoder.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import fields
from typing import Any

import pytest
from redis.exceptions import ResponseError

from crmstream.settings import Settings
from handlers.functions import FunctionLibrary, Library
from handlers.functions.contract import Call, layout_of
from handlers.functions.library import lua_sources
from handlers.functions.offsets import LIBRARY as OFFSETS
from handlers.functions.offsets import Advance, AdvanceReply, Held, TopicOffsets
from handlers.functions.profile import LIBRARY as PROFILE
from handlers.functions.segments import LIBRARY as SEGMENTS
from handlers.functions.timers import LIBRARY as TIMERS
from handlers.functions.triggers import LIBRARY as TRIGGERS
from handlers.functions.triggers import Erase, ScheduleIndex
from handlers.keys import Keys
from handlers.redis_client import RedisClient, connect

LIBRARIES = [OFFSETS, SEGMENTS, TIMERS, TRIGGERS, PROFILE]


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
    found: Any = await client.function_list(library=library.name)
    # A cluster answers per node: every primary must hold it, all alike.
    listed = [e for node in found.values() for e in node] if isinstance(found, dict) else found
    assert listed, library.name
    for entry in listed:
        fields = dict(zip(entry[::2], entry[1::2], strict=True))
        assert fields[b"library_name"].decode() == library.name
        names = {dict(zip(f[::2], f[1::2], strict=True))[b"name"] for f in fields[b"functions"]}
        assert names == {library.function(call).encode() for call in library.calls}


@pytest.mark.parametrize("change", ["one argument missing", "one argument extra"])
async def test_a_call_that_does_not_fit_its_layout_is_refused(
    settings: Settings, client: RedisClient, change: str
) -> None:
    offsets = Keys(settings.redis.key_prefix).partition(0).offsets
    keys, args = Advance([TopicOffsets(offsets, 0, "a", "", "10")]).encode()
    args = args[:-1] if change == "one argument missing" else [*args, "11"]
    await FunctionLibrary(client, OFFSETS, "offsets").load()
    with pytest.raises(ResponseError, match="do not fit its layout"):
        await client.fcall(OFFSETS.function(Advance), len(keys), *keys, *args)
    assert not await client.exists(offsets)


async def test_a_value_of_the_wrong_kind_is_refused_by_name(
    settings: Settings, client: RedisClient
) -> None:
    keys_of = Keys(settings.redis.key_prefix)
    offsets = keys_of.partition(0).offsets
    keys, args = Advance([TopicOffsets(offsets, 0, "a", "", "10")]).encode()
    await FunctionLibrary(client, OFFSETS, "offsets").load()
    with pytest.raises(ResponseError, match="crm_advance: partition is not a number"):
        await client.fcall(OFFSETS.function(Advance), len(keys), *keys, "first", *args[1:])
    assert not await client.exists(offsets)
    shard = keys_of.trigger_shard("s1", "c1")
    index = shard + "birthdays"
    keys, args = Erase(shard, "s1:c1", "relays", [ScheduleIndex(index, is_set=True)]).encode()
    await FunctionLibrary(client, TRIGGERS, "triggers").load()
    with pytest.raises(ResponseError, match='crm_erase: is_set is not "1" or "0"'):
        await client.fcall(TRIGGERS.function(Erase), len(keys), *keys, *args[:-1], "yes")


def test_every_reply_field_is_decoded_by_name() -> None:
    assert [f.name for f in fields(AdvanceReply)] == ["differ"]
    assert AdvanceReply.decode([[[0, b"a", b"10"]]]) == AdvanceReply([Held(0, "a", "10")])
    with pytest.raises(ValueError, match="2 values for 1 fields"):
        AdvanceReply.decode([[], []])


def test_calls_lay_themselves_out_by_their_fields() -> None:
    call: Call = Advance([TopicOffsets("k", 0, "a", "1", "2"), TopicOffsets("j", 3, "b", "", "3")])
    assert call.encode() == (["k", "j"], [0, "a", "1", "2", 3, "b", "", "3"])
