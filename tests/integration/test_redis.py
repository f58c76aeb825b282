"""The real Redis: the key space of a test is its own."""

from __future__ import annotations

from crmstream.settings import Settings
from handlers.keys import Keys
from handlers.redis_client import connect, connect_sync


def test_write_then_read(settings: Settings) -> None:
    client = connect_sync(settings.redis)
    key = f"{settings.redis.key_prefix}:greeting"
    try:
        client.hset(key, mapping={"text": "你好", "count": 3})
        client.hincrby(key, "count", 2)
        assert client.hgetall(key) == {b"text": "你好".encode(), b"count": b"5"}
    finally:
        client.close()


async def test_async_client_and_flow_counts(settings: Settings) -> None:
    from handlers.flow import FlowRecorder  # noqa: PLC0415 -- the unit under test

    client = connect(settings.redis)
    keys = Keys(settings.redis.key_prefix)
    try:
        recorder = FlowRecorder(client, keys)
        await recorder.record(["browse", "cart", "browse"])
        await recorder.record([])
        assert await client.hgetall(keys.flow) == {b"browse": b"2", b"cart": b"1"}
    finally:
        await client.aclose()


def test_tests_do_not_share_key_spaces(base_settings: Settings, settings: Settings) -> None:
    assert settings.redis.key_prefix != base_settings.redis.key_prefix
    assert settings.topics.prefix != base_settings.topics.prefix
