"""The outbox relay sends what its worker wrote at once, not at its next poll: a trigger
decided on an idle worker goes out as soon as it is in the outbox."""

from __future__ import annotations

import asyncio

import pytest

from crmstream.admin import create_topics
from crmstream.settings import Settings
from crmstream.topics import TopicNames
from handlers.keys import Keys
from handlers.redis_client import connect
from streams import relay as relay_module
from streams.relay import OutboxRelay
from tests.support import consume, eventually_async

# Longer than the test may wait: what arrives came because the relay was woken.
_POLL_S = 600.0


async def test_a_trigger_written_goes_out_without_waiting_for_the_poll(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(relay_module, "_IDLE_SLEEP_S", _POLL_S)
    create_topics(settings)
    keys = Keys(settings.redis.key_prefix)
    client = connect(settings.redis)
    written = asyncio.Event()
    # mode would take the policy's loop, which is not necessarily the one running the test.
    relay = OutboxRelay.of("triggers", settings, client, written, loop=asyncio.get_running_loop())
    outbox = keys.outbox(keys.trigger_shard("shop-a", "c1"))
    await relay.start()
    try:

        async def rounds() -> int:
            # A round that found nothing is followed, with no await between, by the wait:
            # seen from here, the relay waits idle.
            return relay.rounds

        await eventually_async(rounds, 30, "the relay's first read of the outbox")
        await client.xadd(outbox, {"key": b"shop-a:c1", "event": b'{"id":"t-1"}', "id": b"t-1"})
        written.set()
        topic = TopicNames.from_settings(settings.topics).triggers
        messages = await asyncio.to_thread(consume, settings, [topic], 1, 30.0)
        assert [m.value() for m in messages] == [b'{"id":"t-1"}']

        async def acknowledged() -> int:
            return int(await client.xlen(outbox))

        await eventually_async(
            acknowledged, 30, "the entry deleted once sent", until=lambda n: n == 0
        )
    finally:
        await relay.stop()
        await client.aclose()
