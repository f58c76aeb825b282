"""The outbox relay sends what its worker wrote at once, not at its next poll: a trigger
decided on an idle worker goes out as soon as it is in the outbox."""

from __future__ import annotations

import asyncio

import pytest

from crmstream.admin import create_topics
from crmstream.settings import Settings
from crmstream.topics import TopicNames
from handlers.keys import Keys
from handlers.redis_client import RedisClient, connect
from streams import relay as relay_module
from streams.relay import OutboxRelay
from tests.support import consume, eventually_async

# Longer than the test may wait: what arrives came because the relay was woken.
_POLL_S = 600.0


def _woken_relay(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> tuple[OutboxRelay, RedisClient, asyncio.Event, str]:
    """A triggers relay that polls too seldom to matter: it goes when its worker wakes it.
    With its Redis client, the event that wakes it, and the outbox of one customer."""
    monkeypatch.setattr(relay_module, "_IDLE_SLEEP_S", _POLL_S)
    create_topics(settings)
    keys = Keys(settings.redis.key_prefix)
    client = connect(settings.redis)
    written = asyncio.Event()
    # mode would take the policy's loop, which is not necessarily the one running the test.
    relay = OutboxRelay.of("triggers", settings, client, written, loop=asyncio.get_running_loop())
    return relay, client, written, keys.outbox(keys.trigger_shard("shop-a", "c1"))


async def test_a_trigger_written_goes_out_without_waiting_for_the_poll(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    relay, client, written, outbox = _woken_relay(settings, monkeypatch)
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


async def test_a_round_that_took_all_there_was_is_not_followed_by_another_read(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A busy worker writes to the outbox every batch: a read that took less than it may
    took everything, and the relay waits for the next write rather than reading again at
    once (a round trip for nothing, each time)."""
    relay, client, written, outbox = _woken_relay(settings, monkeypatch)
    waits: list[int] = []  # the relay's rounds so far, each time it starts to wait
    idle = relay._idle

    async def counted_idle() -> None:
        waits.append(relay.rounds)
        await idle()

    monkeypatch.setattr(relay, "_idle", counted_idle)
    await relay.start()
    try:
        await eventually_async(lambda: _now(len(waits)), 30, "the relay's first wait")
        for n in range(3):
            tid = f"t-{n}".encode()
            await client.xadd(outbox, {"key": b"shop-a:c1", "event": b'{"id":"' + tid + b'"}',
                                       "id": tid})  # fmt: skip
            written.set()
            await eventually_async(
                lambda: _now(len(waits)), 30, "the relay waiting again", until=(n + 2).__le__
            )
        # One read for each write, after the first read of all.
        assert waits == [1, 2, 3, 4]
        assert relay.relayed == 3
    finally:
        await relay.stop()
        await client.aclose()


async def _now(value: int) -> int:
    return value


async def test_a_message_confirmed_after_its_round_is_acknowledged(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A flush that runs out of time (the broker away) leaves messages in flight; the
    broker's word on them, coming in a later round, still has their entries acknowledged
    then, not left pending until another relay claims them."""
    monkeypatch.setattr(relay_module, "_IDLE_SLEEP_S", 0.05)
    create_topics(settings)
    keys = Keys(settings.redis.key_prefix)
    client = connect(settings.redis)
    written = asyncio.Event()
    # No wait for the broker at all: every message is still in flight when its round ends.
    relay = OutboxRelay.of(
        "triggers", settings, client, written, flush_timeout_s=0.0,
        loop=asyncio.get_running_loop(),
    )  # fmt: skip
    outboxes = [keys.outbox(keys.trigger_shard("shop-a", f"c{n}")) for n in range(20)]
    await relay.start()
    try:
        for n, outbox in enumerate(outboxes):
            tid = f"t-{n}".encode()
            await client.xadd(outbox, {"key": b"shop-a:c", "event": b'{"id":"' + tid + b'"}',
                                       "id": tid})  # fmt: skip
        written.set()
        topic = TopicNames.from_settings(settings.topics).triggers
        messages = await asyncio.to_thread(consume, settings, [topic], 20, 30.0)
        assert sorted(m.value() or b"" for m in messages) == sorted(
            b'{"id":"t-' + str(n).encode() + b'"}' for n in range(20)
        )

        async def left() -> int:
            return sum([int(await client.xlen(outbox)) for outbox in set(outboxes)])

        await eventually_async(left, 20, "every entry acknowledged", until=lambda n: n == 0)
        assert relay.relayed == 20
    finally:
        await relay.stop()
        await client.aclose()


async def test_one_round_reads_every_outbox_and_claims_a_dead_relays_entries(
    settings: Settings,
) -> None:
    """Entries on all sixteen outboxes come out of one round (one XREADGROUP per hash slot,
    on a Redis Cluster as on one Redis), and a claiming round takes over the entries another
    relay read but never acknowledged: each is sent once, and the outboxes end empty."""
    create_topics(settings)
    keys = Keys(settings.redis.key_prefix)
    client = connect(settings.redis)
    relay = OutboxRelay.of(
        "triggers", settings, client, asyncio.Event(), loop=asyncio.get_running_loop()
    )
    relay._claim_idle_ms = 0  # the dead relay's entries may be claimed at once
    outboxes = [keys.outbox(base) for base in keys.trigger_shards()]
    try:
        await relay._create_groups()
        for n, outbox in enumerate(outboxes):
            tid = f"t-{n}".encode()
            await client.xadd(outbox, {"key": b"shop-a:c", "event": b'{"id":"' + tid + b'"}',
                                       "id": tid})  # fmt: skip
        assert await relay.relay_once() == len(outboxes)
        # A relay that died after reading: its entries stay pending under its name.
        for n, outbox in enumerate(outboxes[:3]):
            tid = f"d-{n}".encode()
            await client.xadd(outbox, {"key": b"shop-a:c", "event": b'{"id":"' + tid + b'"}',
                                       "id": tid})  # fmt: skip
            await client.xreadgroup(relay_module.GROUP, "dead-relay", {outbox: ">"})
        assert await relay.relay_once() == 0  # not read again by a plain round
        assert await relay.relay_once(claim=True) == 3
        topic = TopicNames.from_settings(settings.topics).triggers
        messages = await asyncio.to_thread(consume, settings, [topic], len(outboxes) + 3, 30.0)
        assert sorted(m.value() or b"" for m in messages) == sorted(
            [b'{"id":"t-' + str(n).encode() + b'"}' for n in range(len(outboxes))]
            + [b'{"id":"d-' + str(n).encode() + b'"}' for n in range(3)]
        )
        assert [int(await client.xlen(outbox)) for outbox in outboxes] == [0] * len(outboxes)
    finally:
        relay._producer.flush(10)
        await client.aclose()
