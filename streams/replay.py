"""Rebuilding profiles from the event topics, from the beginning.

The profiles (of one shop, or all) are wiped first, tombstones excepted: a
customer who asked to be forgotten stays forgotten. The trigger machinery
(outboxes, timers, cooldowns, stats, memberships) is left as it is, unless a
reset is asked for as well (reset_triggers). Then every event up to the
topics' current end goes through the same decoder and the same profile stage
as live, in the same batches, so the result is what the live worker built.
Workers that keep running meanwhile do no harm: what both apply is a duplicate
for the second.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, TopicPartition

from crmstream.admin import list_topics
from crmstream.settings import Settings
from crmstream.topics import TopicNames
from handlers.keys import CUSTOMER_KEYS, Keys
from handlers.profile.stage import ProfileStage
from handlers.redis_client import RedisClient
from schemas.decode import Decoder, Rejected
from schemas.events import Envelope
from streams.app import aiokafka_options

_TOMBSTONE = ":" + CUSTOMER_KEYS.old_tombstone


@dataclass(slots=True)
class ReplayReport:
    wiped_keys: int = 0
    read: int = 0
    applied: int = 0
    duplicates: int = 0
    skipped_invalid: int = 0
    skipped_other_shops: int = 0


async def wipe_profiles(client: RedisClient, keys: Keys, shop: str | None) -> int:
    """Delete every customer key (of one shop), tombstones kept. Returns how many went."""
    # A customer's hash tag is "{shop:customer}"; trigger shards ("{t3}") and partitions
    # ("{p5}": timers, offsets) carry no colon there and are not profiles: they stay.
    pattern = keys.customers_of(shop) if shop else f"{keys.prefix}:{{*:*}}:*"
    return await _unlink_matching(client, pattern, lambda name: not name.endswith(_TOMBSTONE))


async def reset_triggers(client: RedisClient, keys: Keys) -> int:
    """Delete the trigger machinery of every shop: each shard's outbox, held triggers,
    guards, stats and memberships, each partition's timers and decisions put off. The
    offsets the profiles reflect stay. Returns how many keys went."""
    shard_or_partition = re.compile(rf"^{re.escape(keys.prefix)}:\{{[tp]\d+\}}:")
    kept = {keys.partition(n).offsets for n in range(1024)}
    return await _unlink_matching(
        client,
        f"{keys.prefix}:{{*",
        lambda name: bool(shard_or_partition.match(name)) and name not in kept,
    )


async def _unlink_matching(
    client: RedisClient, pattern: str, doomed_if: Callable[[str], bool]
) -> int:
    """Unlink the keys matching ``pattern`` that ``doomed_if`` picks, a thousand at a time."""
    doomed: list[bytes] = []
    wiped = 0
    async for key in client.scan_iter(match=pattern, count=1000):
        if doomed_if(key.decode()):
            doomed.append(key)
        if len(doomed) >= 1000:
            wiped += await client.unlink(*doomed)
            doomed.clear()
    if doomed:
        wiped += await client.unlink(*doomed)
    return wiped


async def _wipe(client: RedisClient, keys: Keys, shop: str | None, with_triggers: bool) -> int:
    if with_triggers and shop is not None:
        raise ValueError("the trigger machinery is shared by shops: reset it for all or none")
    wiped = await wipe_profiles(client, keys, shop)
    if with_triggers:
        wiped += await reset_triggers(client, keys)
    return wiped


async def replay(
    settings: Settings,
    shop: str | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    *,
    with_triggers: bool = False,
) -> ReplayReport:
    """Wipe, then apply every event up to the current end of the topics. ``with_triggers``
    (every shop only: shards hold several shops) resets the trigger machinery too."""
    stage = ProfileStage.from_settings(settings)
    report = ReplayReport()
    report.wiped_keys = await _wipe(
        stage.client, Keys(settings.redis.key_prefix), shop, with_triggers
    )
    options = aiokafka_options(settings.kafka)
    options["client_id"] = f"{options['client_id']}-replay-{uuid.uuid4().hex[:8]}"
    consumer = AIOKafkaConsumer(
        **options,
        group_id=None,  # a private read: nothing is committed, the live group is untouched
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=settings.worker.batch_max,
    )
    await consumer.start()
    try:
        counts = await asyncio.to_thread(list_topics, settings)
        partitions = [
            TopicPartition(topic, partition)
            for topic in TopicNames.from_settings(settings.topics).events
            for partition in range(counts.get(topic, 0))
        ]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = {tp: end for tp, end in (await consumer.end_offsets(partitions)).items() if end}
        total = sum(ends.values())
        decoder = Decoder()
        while ends:
            fetched = await consumer.getmany(*ends, timeout_ms=1000)
            not_after = decoder.not_after(datetime.now(UTC))
            batch: list[Envelope] = []
            for tp, records in fetched.items():
                for record in records:
                    if record.offset >= ends.get(tp, 0):
                        continue
                    report.read += 1
                    event = decoder.decode(record.value or b"", None, None, not_after)
                    if isinstance(event, Rejected):
                        report.skipped_invalid += 1
                    elif shop is not None and event.shop != shop:
                        report.skipped_other_shops += 1
                    else:
                        batch.append(event)
            if batch:
                outcome = await stage.apply(batch)
                report.applied += outcome.applied
                report.duplicates += outcome.duplicates
            for tp in list(ends):
                if await consumer.position(tp) >= ends[tp]:
                    del ends[tp]
            if on_progress is not None:
                on_progress(report.read, total)
    finally:
        await consumer.stop()
        await stage.close()
    return report
