"""The worker's Redis connection packs a command in one pass, exactly as redis-py would."""

from __future__ import annotations

import pytest
import redis.asyncio
from redis.exceptions import DataError
from redis.typing import EncodableT

from handlers.redis_client import _Connection

_COMMANDS: list[tuple[EncodableT, ...]] = [
    ("FCALL", "profile_apply", 2, "crm:{s:c}:p", "crm:{s:c}:w", b"\x00\xff", "顾客", -7, 2**70),
    ("SET", "k", 0.1, 1e20, -0.0, float("inf"), ""),
    (b"HGETALL", b"key"),
    ("CONFIG GET", "maxmemory"),
    ("CLIENT", "SETNAME", "crmstream"),
]


@pytest.mark.parametrize("command", _COMMANDS)
def test_the_wire_form_is_redis_pys(command: tuple[EncodableT, ...]) -> None:
    ours, theirs = _Connection(), redis.asyncio.Connection()
    assert b"".join(ours.pack_command(*command)) == b"".join(theirs.pack_command(*command))


def test_a_pipeline_is_packed_as_redis_py_packs_it() -> None:
    ours, theirs = _Connection(), redis.asyncio.Connection()
    assert b"".join(ours.pack_commands(_COMMANDS)) == b"".join(theirs.pack_commands(_COMMANDS))


def test_what_redis_py_refuses_is_still_refused() -> None:
    with pytest.raises(DataError, match="bool"):
        _Connection().pack_command("SET", "k", True)  # noqa: FBT003 -- the value refused
