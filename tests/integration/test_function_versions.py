"""Rolling deploys: workers of two versions share one Redis, each calling its own code."""

from __future__ import annotations

import pytest

from crmstream.settings import Settings
from handlers.functions import Library
from handlers.functions.offsets import Advance
from handlers.functions.triggers import LIBRARY, Emit, EmitReply
from handlers.keys import Keys
from handlers.redis_client import connect


def build(comment: str) -> Library:
    """This library again, with ``comment`` added: another version of the same code."""
    return Library.build("crmstream_triggers", LIBRARY.parts, LIBRARY.calls,
                         LIBRARY.written + "\n" + comment)  # fmt: skip


def test_a_library_and_its_functions_are_named_by_their_source() -> None:
    one, same, other = build("-- one"), build("-- one"), build("-- two")
    assert (one.name, one.function(Emit)) == (same.name, same.function(Emit))
    assert one.name != other.name
    assert one.function(Emit) != other.function(Emit)
    assert one.function(Emit).startswith("crm_emit_")
    with pytest.raises(ValueError, match="has no function"):
        one.function(Advance)  # the offsets library's


async def test_two_versions_loaded_side_by_side_both_answer(settings: Settings) -> None:
    client = connect(settings.redis)
    shard = Keys(settings.redis.key_prefix).trigger_shard_base(0)
    this, following = LIBRARY, build("-- the following version")
    call = Emit(shard, fired_window_ms=1, now_ms=0, log_size=50, candidates=[])
    keys, args = call.encode()
    try:
        await client.function_load(this.source, replace=True)
        await client.function_load(following.source, replace=True)
        # Loading this version again (a worker restarting, a backtest) replaces only itself.
        await client.function_load(this.source, replace=True)
        for library in (this, following):
            raw = await client.fcall(library.function(Emit), len(keys), *keys, *args)
            assert call.decode(raw) == EmitReply(decisions=[])
    finally:
        await client.function_delete(following.name)
        await client.aclose()
