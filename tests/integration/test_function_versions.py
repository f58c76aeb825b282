"""Rolling deploys: workers of two versions share one Redis, each calling its own code."""

from __future__ import annotations

import pytest

from crmstream.settings import Settings
from handlers.keys import TRIGGER_SUFFIXES_ARG, Keys
from handlers.redis_client import connect
from handlers.scripts import EMIT, TRIGGER_LIBRARY, Library

SUFFIXES = TRIGGER_SUFFIXES_ARG


def test_a_library_and_its_functions_are_named_by_their_source() -> None:
    changed = Library.from_text(TRIGGER_LIBRARY.source.replace("_" + TRIGGER_LIBRARY.version, ""))
    assert changed.name == TRIGGER_LIBRARY.name  # the same source: the same names
    other = Library.from_text(
        TRIGGER_LIBRARY.source.replace("_" + TRIGGER_LIBRARY.version, "") + "\n-- next\n"
    )
    assert other.name != TRIGGER_LIBRARY.name
    assert other.function("crm_emit") != EMIT
    with pytest.raises(ValueError, match="has no function"):
        TRIGGER_LIBRARY.function("crm_nothing")


async def test_two_versions_loaded_side_by_side_both_answer(settings: Settings) -> None:
    client = connect(settings.redis)
    base = Keys(settings.redis.key_prefix).trigger_shard_base(0)
    unversioned = TRIGGER_LIBRARY.source.replace("_" + TRIGGER_LIBRARY.version, "")
    # The next version changed what emit answers: its callers expect something else.
    nxt = Library.from_text(unversioned.replace("return statuses", "return {'next'}"))
    try:
        await client.function_load(TRIGGER_LIBRARY.source, replace=True)
        await client.function_load(nxt.source, replace=True)
        # Loading this version again (a worker restarting, a backtest) replaces only itself.
        await client.function_load(TRIGGER_LIBRARY.source, replace=True)
        assert await client.fcall(EMIT, 1, base, 0, SUFFIXES, 0, 50) == []
        assert await client.fcall(nxt.function("crm_emit"), 1, base, 0, SUFFIXES, 0, 50) == [
            b"next"
        ]
    finally:
        await client.function_delete(nxt.name)
        await client.aclose()
