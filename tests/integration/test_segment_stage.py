"""Live segments against the real Redis: membership, sizes, pages, time and erasure."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from redis.crc import key_slot

from crmstream.settings import Settings
from handlers.pipeline import ProfilesAndTriggers
from handlers.redis_client import is_cluster
from handlers.segments.outbox import change_id, render_change
from handlers.segments.read import MemberPage
from rules import PACKAGED_SEGMENTS
from schemas.events import Envelope
from schemas.segments import SegmentChange
from schemas.times import epoch_ms
from tests.integration.test_trigger_stage import T0, event, placed, registered, started


@pytest.fixture
async def sink(settings: Settings) -> AsyncIterator[ProfilesAndTriggers]:
    sink = started(settings)
    at(sink, days=0)
    yield sink
    await sink.close()


def at(sink: ProfilesAndTriggers, days: float) -> None:
    """Memberships are as of now: here, T0 plus ``days``."""
    moment = (T0 + timedelta(days=days)).timestamp()
    sink.segments.wall = lambda: moment


async def changes(sink: ProfilesAndTriggers) -> list[SegmentChange]:
    client, keys = sink.client, sink.keys
    found = []
    for base in keys.trigger_shards():
        for _id, fields in await client.xrange(keys.segment_outbox(base)) or []:
            _key, value, _id = render_change(cast("dict[bytes, bytes]", fields))
            found.append(SegmentChange.model_validate_json(value))
    return sorted(
        found, key=lambda change: (change.subject, change.data.segment, change.data.transition)
    )


def tagged(days: float, tags: list[str], who: str = "c1") -> Envelope:
    return event("customer.updated", days * 1440, {"tags": tags}, who)


async def test_a_profile_change_enters_and_leaves_segments_once(sink: ProfilesAndTriggers) -> None:
    await sink.handle([registered(0), tagged(0, ["vip-list"])])
    assert await sink.segment_reader.of_customer("s1", "c1") == ["vip-list"]
    assert (await sink.segment_reader.sizes("s1"))["vip-list"] == 1
    batch = [tagged(1, [])]
    await sink.handle(batch)
    await sink.handle(batch)  # delivered twice: nothing changes twice
    assert await sink.segment_reader.of_customer("s1", "c1") == []
    assert (await sink.segment_reader.sizes("s1"))["vip-list"] == 0
    found = [(c.type, c.data.segment, c.data.transition) for c in await changes(sink)]
    assert found == [("segment.entered", "vip-list", 1), ("segment.exited", "vip-list", 2)]
    first = (await changes(sink))[0]
    assert first.id == change_id("s1", "c1", "vip-list", 1)
    assert first.data.caused_by.startswith("e")


async def test_time_alone_makes_a_buyer_dormant(sink: ProfilesAndTriggers) -> None:
    await sink.handle([registered(0), placed(1)])
    assert "dormant" not in await sink.segment_reader.of_customer("s1", "c1")
    at(sink, days=90)
    report = await sink.segments.recheck(epoch_ms(T0 + timedelta(days=90)))
    assert report.customers == 1
    assert "dormant" not in await sink.segment_reader.of_customer("s1", "c1")
    report = await sink.segments.recheck(epoch_ms(T0 + timedelta(days=92)))
    assert report.changes >= 1
    assert "dormant" in await sink.segment_reader.of_customer("s1", "c1")
    entered = [c for c in await changes(sink) if c.data.segment == "dormant"]
    assert [(c.type, c.data.caused_by) for c in entered] == [("segment.entered", "recheck")]


async def test_customers_beyond_the_horizon_are_not_rechecked(
    settings: Settings,
) -> None:
    segments = settings.segments.model_copy(update={"recheck_horizon_days": 30})
    sink = started(settings.model_copy(update={"segments": segments}))
    try:
        at(sink, 0)
        await sink.handle([registered(0, "old"), placed(1, "old"), registered(50 * 1440, "new")])
        report = await sink.segments.recheck(epoch_ms(T0 + timedelta(days=60)))
        assert report.customers == 1  # "old" did nothing for 59 days
    finally:
        await sink.close()


async def test_an_erasure_takes_the_customer_out_of_every_segment(
    sink: ProfilesAndTriggers,
) -> None:
    await sink.handle([registered(0), tagged(0, ["vip-list"])])
    await sink.handle([event("customer.erasure_requested", 5)])
    assert await sink.segment_reader.of_customer("s1", "c1") == []
    assert (await sink.segment_reader.sizes("s1"))["vip-list"] == 0
    assert (await changes(sink))[-1].type == "segment.exited"
    page = await sink.segment_reader.members("s1", "vip-list")
    assert page.members == []


async def test_member_pages_are_stable_while_membership_changes(
    sink: ProfilesAndTriggers,
) -> None:
    names = [f"c{n:03d}" for n in range(250)]
    await sink.handle([tagged(0, ["vip-list"], who) for who in names])
    reader = sink.segment_reader
    first = await reader.members("s1", "vip-list", limit=100)
    assert first.members == names[:100]
    assert first.cursor == names[99]
    # Meanwhile some leave (from both pages) and some join, before and after the cursor.
    await sink.handle(
        [tagged(1, [], who) for who in (names[5], names[150])]
        + [tagged(1, ["vip-list"], who) for who in ("a-early", "z-late")]
    )
    seen = list(first.members)
    cursor: str | None = first.cursor
    while cursor is not None:
        page = await reader.members("s1", "vip-list", cursor=cursor, limit=100)
        seen += page.members
        cursor = page.cursor
    stayed = [who for who in names if who not in (names[5], names[150])]
    assert set(stayed) <= set(seen)
    assert len(seen) == len(set(seen))  # nobody twice
    assert "z-late" in seen
    assert (await reader.sizes("s1"))["vip-list"] == 250


async def test_a_batch_writes_every_shard_in_one_call_per_hash_slot(
    sink: ProfilesAndTriggers,
) -> None:
    names = [f"c{n:02d}" for n in range(40)]
    keys = sink.keys
    shards = {keys.trigger_shard("s1", who) for who in names}
    assert len(shards) > 4
    calls: list[int] = []
    library = sink.segments._library
    run = library.run

    async def counted(batch: Any, **kwargs: Any) -> Any:
        calls.append(len(batch))
        return await run(batch, **kwargs)

    library.run = counted  # type: ignore[method-assign, assignment]
    await sink.handle([tagged(0, ["vip-list"], who) for who in names])
    slots = {key_slot(base.encode()) for base in shards}
    assert calls == [len(slots) if is_cluster(sink.client) else 1]
    assert (await sink.segment_reader.sizes("s1"))["vip-list"] == len(names)
    for who in names:
        assert await sink.segment_reader.of_customer("s1", who) == ["vip-list"]
        seen = keys.segment_seen(keys.trigger_shard("s1", who))
        assert await sink.client.zscore(seen, f"s1:{who}") is not None


async def test_a_new_segment_fills_up_at_the_next_recheck(
    settings: Settings, tmp_path: Path
) -> None:
    folder = tmp_path / "segments"
    folder.mkdir()
    (folder / "vip-list.yaml").write_text((PACKAGED_SEGMENTS / "vip-list.yaml").read_text())
    mine = settings.model_copy(
        update={"segments": settings.segments.model_copy(update={"segments_dir": folder})}
    )
    sink = started(mine)
    try:
        at(sink, 0)
        north = event("customer.updated", 0, {"region": "华北"}, "c-north")
        await sink.handle([north, tagged(0, ["vip-list"], "c-vip")])
        await sink.segments.recheck(epoch_ms(T0))  # nothing timed, nothing new: a no-op
        (folder / "north-region.yaml").write_text(
            (PACKAGED_SEGMENTS / "north-region.yaml").read_text()
        )
        assert sink.reload_rules() is not None
        report = await sink.segments.recheck(epoch_ms(T0))
        assert report.customers == 2
        assert await sink.segment_reader.members("s1", "north-region") == MemberPage(
            ["c-north"], None
        )
        again = await sink.segments.recheck(epoch_ms(T0))
        assert again.customers == 0  # filled once; nothing in it changes with time
    finally:
        await sink.close()


def viewed(minutes: float, who: str = "c1") -> Envelope:
    return event("item.viewed", minutes, {"item_id": "tea-1", "category": "tea"}, who)


async def test_a_batch_that_changes_nothing_segments_read_only_marks_the_customer_seen(
    sink: ProfilesAndTriggers,
) -> None:
    await sink.handle([registered(0), tagged(0, ["vip-list"])])
    reads: list[int] = []
    read_stored = sink.segments.reader.read_stored

    async def counted(*args: Any, **kwargs: Any) -> Any:
        reads.append(len(args[0]))
        return await read_stored(*args, **kwargs)

    sink.segments.reader.read_stored = counted  # type: ignore[method-assign]
    # Views change counters and windows no pack segment reads (derived.aipl would).
    applied = await sink.profiles.apply([viewed(60), viewed(61)], sink.segments.watched)
    assert applied.changed == set()
    await sink.segments.on_batch(applied.touched, applied.changed)
    assert reads == []  # no profile read, nothing evaluated
    seen = sink.keys.segment_seen(sink.keys.trigger_shard("s1", "c1"))
    assert await sink.client.zscore(seen, "s1:c1") == epoch_ms(T0 + timedelta(minutes=61))
    assert await sink.segment_reader.of_customer("s1", "c1") == ["vip-list"]
    # What a segment reads changes: evaluated again.
    await sink.handle([tagged(1, [])])
    assert reads == [1]
    assert await sink.segment_reader.of_customer("s1", "c1") == []


async def test_a_batch_delivered_again_evaluates_what_its_first_delivery_may_not_have(
    sink: ProfilesAndTriggers,
) -> None:
    """A worker killed between a batch's profile update and its segments: the batch comes
    again, every event a duplicate, and the memberships it changed are still worked out."""
    batch = [registered(0), tagged(0, ["vip-list"])]
    await sink.profiles.apply(batch, sink.segments.watched)  # and then the worker died
    assert await sink.segment_reader.of_customer("s1", "c1") == []
    await sink.handle(batch)
    assert await sink.segment_reader.of_customer("s1", "c1") == ["vip-list"]
