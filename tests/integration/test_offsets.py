"""Offsets kept with the state: a worker resumes from what Redis holds, and a Redis that
lost writes is read up to date again from Kafka instead of being silently skipped."""

from __future__ import annotations

from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition

from crmstream.admin import create_topics
from crmstream.errors import StateBehindError
from crmstream.settings import Settings
from crmstream.topics import TopicNames
from handlers.functions import FunctionLibrary
from handlers.functions.timers import LIBRARY as TIMER_LIBRARY
from handlers.functions.timers import Due, DueEntry, DueReply, Fence
from handlers.keys import Keys
from handlers.offsets import OffsetStore
from handlers.profile.read import ProfileReader
from handlers.redis_client import connect, connect_sync
from handlers.timing.members import timer_member, timer_value
from tests.integration.test_profiles import converge, publish, simulated
from tests.support import eventually, running_worker, text, wipe_redis

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


async def test_the_store_resumes_checks_and_records(settings: Settings) -> None:
    client = connect(settings.redis)
    keys = Keys(settings.redis.key_prefix)
    store = OffsetStore(client, keys)
    try:
        assert await store.resume([("a", 0), ("b", 0), ("a", 1)]) == {}
        await store.check([("a", 0), ("a", 1)])  # nothing recorded, nothing expected
        await store.record({("a", 0): 10, ("b", 0): 4, ("a", 1): 7})
        await store.check([("a", 0), ("b", 0), ("a", 1)])
        assert await OffsetStore(client, keys).resume([("a", 0), ("a", 1)]) == {
            ("a", 0): 10,
            ("a", 1): 7,
        }
        # A restore from an older backup: partition 0 of "a" went back; "b" is gone.
        await client.hset(keys.partition(0).offsets, "a", 6)
        await client.hdel(keys.partition(0).offsets, "b")
        with pytest.raises(StateBehindError) as behind:
            await store.record({("a", 0): 12, ("b", 0): 5})
        assert behind.value.positions == {("a", 0): 6, ("b", 0): 0}
        assert await client.hget(keys.partition(0).offsets, "a") == b"6"  # nothing written
        # From there on, what Redis holds is what is expected.
        await store.record({("a", 0): 12, ("b", 0): 5})
        await store.check([("a", 0), ("b", 0), ("a", 1)])
    finally:
        await client.aclose()


async def test_one_partition_behind_holds_back_only_itself(settings: Settings) -> None:
    """Every partition of a batch is checked and recorded in one call (one per hash slot):
    one that lost writes is written nothing and said, the others move on."""
    client = connect(settings.redis)
    keys = Keys(settings.redis.key_prefix)
    store = OffsetStore(client, keys)
    try:
        await store.resume([("a", p) for p in range(8)])
        await store.record({("a", p): 10 + p for p in range(8)})
        await client.hset(keys.partition(5).offsets, "a", 3)
        with pytest.raises(StateBehindError) as behind:
            await store.record({("a", p): 20 + p for p in range(8)})
        assert behind.value.positions == {("a", 5): 3}
        held = [await client.hget(keys.partition(p).offsets, "a") for p in range(8)]
        assert held == [str(20 + p).encode() if p != 5 else b"3" for p in range(8)]
    finally:
        await client.aclose()


def committed(settings: Settings) -> dict[tuple[str, int], int]:
    topics = TopicNames.from_settings(settings.topics).events
    probe = Consumer(
        {**settings.kafka.librdkafka(), "group.id": f"{settings.worker.app_id}.events"}
    )
    try:
        wanted = [
            TopicPartition(topic, n)
            for topic in topics
            for n in range(settings.topics.event_partitions)
        ]
        return {(tp.topic, tp.partition): tp.offset for tp in probe.committed(wanted, timeout=10)}
    finally:
        probe.close()


def recorded(settings: Settings) -> dict[tuple[str, int], int]:
    keys = Keys(settings.redis.key_prefix)
    client = connect_sync(settings.redis)
    try:
        held: dict[tuple[str, int], int] = {}
        for n in range(settings.topics.event_partitions):
            for topic, at in client.hgetall(keys.partition(n).offsets).items():
                held[text(topic), n] = int(at)
        return held
    finally:
        client.close()


async def test_a_redis_that_lost_everything_is_read_up_to_date_again(
    settings: Settings, reader: ProfileReader, tmp_path: Path
) -> None:
    create_topics(settings)
    events = simulated(tmp_path / "events.jsonl", 6_000, seed=41)
    first, rest = events[:4_000], events[4_000:]
    publish(settings, first)
    log = tmp_path / "worker.log"
    with running_worker(settings, log) as worker:
        await converge(reader, first, worker, log)
        eventually(
            lambda: (committed(settings), recorded(settings)), 30,
            "Kafka's committed offsets following what Redis recorded",
            until=lambda seen: seen[0] == {**seen[0], **seen[1]},
        )  # fmt: skip
        # Every profile, timer, offset and dedup mark of this deployment is gone, the way a
        # Redis without persistence comes back from a restart. The worker goes on.
        wipe_redis(settings)
        publish(settings, rest)
        await converge(reader, events, worker, log)
    assert "Redis lost recent writes; reading again from" in log.read_text()


def ends(settings: Settings) -> dict[tuple[str, int], int]:
    """Each event partition's end offset, for those that hold a record."""
    topics = TopicNames.from_settings(settings.topics).events
    probe = Consumer({**settings.kafka.librdkafka(), "group.id": "offsets-probe"})
    try:
        found = {
            (topic, n): probe.get_watermark_offsets(TopicPartition(topic, n), timeout=10)[1]
            for topic in topics
            for n in range(settings.topics.event_partitions)
        }
    finally:
        probe.close()
    return {partition: end for partition, end in found.items() if end > 0}


async def test_kafka_commits_reach_what_the_store_holds_with_nothing_left_to_read(
    settings: Settings, tmp_path: Path
) -> None:
    """An owner that recorded its last batch and was killed before committing it to Kafka
    leaves the store ahead. The partition's next owner has nothing more to read there, so
    no batch of its commits; it commits what the store holds once idle, or the group's lag
    would show the partition behind for good."""
    create_topics(settings)
    publish(settings, simulated(tmp_path / "events.jsonl", 300, seed=43))
    done = ends(settings)
    keys = Keys(settings.redis.key_prefix)
    client = connect_sync(settings.redis)
    try:
        for (topic, n), end in done.items():
            client.hset(keys.partition(n).offsets, topic, end)
    finally:
        client.close()
    with running_worker(settings, tmp_path / "worker.log"):
        eventually(
            lambda: committed(settings), 60, "Kafka's committed offsets at the store's",
            until=lambda seen: all(seen[partition] == end for partition, end in done.items()),
        )  # fmt: skip


async def test_a_timer_walk_decides_nothing_on_a_redis_that_lost_writes(settings: Settings) -> None:
    """A cancel lost with the last second of writes leaves its timer behind: the walk must
    not fire it by the time read before; the partition is read again first."""
    client = connect(settings.redis)
    keys = Keys(settings.redis.key_prefix)
    library = FunctionLibrary(client, TIMER_LIBRARY, "timers")
    member = timer_member("cart-abandoned", "tea-house", "c1")

    async def walk(*fence: Fence) -> DueReply:
        (reply,) = await library.run([Due(keys.partition(0), 10_000, 100, "w1", 5_000, fence)])
        assert isinstance(reply, DueReply)
        return reply

    try:
        await client.zadd(keys.partition(0).timers, {member: 5_000})
        await client.hset(keys.partition(0).payloads, member, timer_value(5_000, 1_000, {}))
        await client.hset(keys.partition(0).offsets, mapping={"cart": 6, "order": 9})
        lost = await walk(Fence("cart", "7"), Fence("order", "9"))  # cart lost a write
        assert lost == DueReply([], cut_short=False, state_lost=True, waiting=0, cancelled=0)
        assert await walk(Fence("cart", "6"), Fence("order", "")) == DueReply(
            [DueEntry(member, timer_value(5_000, 1_000, {}))],
            cut_short=False,
            state_lost=False,
            waiting=1,  # taken, until the walker is done with it
            cancelled=0,
        )
    finally:
        await client.aclose()
