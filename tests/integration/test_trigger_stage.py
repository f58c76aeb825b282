"""Rules against the real Redis: timers, guards, the outbox, and racing workers."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from crmstream.settings import Settings
from handlers.customer_export import export_customer
from handlers.customer_lookup import customer_by_phone
from handlers.functions import FunctionLibrary
from handlers.functions.profile import ReadProfiles
from handlers.functions.triggers import LIBRARY as TRIGGER_LIBRARY
from handlers.pipeline import ProfilesAndTriggers
from handlers.segments.read import SegmentReader
from handlers.triggers.decisions import DecisionReader
from handlers.triggers.stats import read_rule_stats
from schemas.decode import Decoder
from schemas.events import Envelope
from schemas.times import epoch_ms

T0 = datetime(2026, 3, 1, 4, tzinfo=UTC)  # 12:00 in Shanghai, outside quiet hours
DECODER = Decoder()
_ids = iter(range(10**9))

ABANDONED = """
id: abandoned
version: 1
description: cart, no order within 30 minutes
when: {absence: {after: cart.item_added, missing: order.placed, within: 30m}}
then: {channels: [push], template: cart}
"""
BAD_REVIEW = """
id: bad-review
version: 1
description: rating of two or less
when: {event: review.posted}
if: event.data.rating <= 2
then: {channels: [service_desk], template: callback}
limits: {transactional: true}
"""
SURVEY = """
id: survey
version: 1
description: after delivery, at most weekly, never at night
when: {event: order.delivered}
then: {channels: [sms], template: survey}
limits: {cooldown: 7d, quiet_hours: {start: "22:00", end: "08:00"}}
"""


def event(
    kind: str, minutes: float, data: dict[str, Any] | None = None, who: str = "c1"
) -> Envelope:
    raw = {
        "specversion": "1.0",
        "id": f"e{next(_ids)}",
        "source": "test",
        "type": kind,
        "time": (T0 + timedelta(minutes=minutes)).isoformat(),
        "shop": "s1",
        "subject": who,
        "data": data or {},
    }
    return DECODER.require(orjson.dumps(raw), epoch_ms(datetime.now(UTC)))


def registered(minutes: float, who: str = "c1") -> Envelope:
    consents = {"marketing": True, "sms": True, "push": True, "email": True}
    return event("customer.registered", minutes, {"consents": consents}, who)


def cart_add(minutes: float, who: str = "c1") -> Envelope:
    data = {"item_id": "tea-1", "category": "tea", "qty": 1, "price": "9.90"}
    return event("cart.item_added", minutes, data, who)


def placed(minutes: float, who: str = "c1") -> Envelope:
    line = {"item_id": "tea-1", "category": "tea", "qty": 1, "price": "9.90"}
    return event("order.placed", minutes, {"order_id": "o1", "items": [line], "total": "9.90"}, who)


@pytest.fixture
def rule_dir(tmp_path: Path) -> Path:
    for name, text in (("abandoned", ABANDONED), ("bad-review", BAD_REVIEW), ("survey", SURVEY)):
        (tmp_path / f"{name}.yaml").write_text(text)
    return tmp_path


@pytest.fixture
def rule_settings(settings: Settings, rule_dir: Path) -> Settings:
    triggers = settings.triggers.model_copy(
        update={"rules_dir": rule_dir, "timer_disorder_s": 0.0, "timer_idle_s": 3600.0}
    )
    return settings.model_copy(update={"triggers": triggers})


def started(settings: Settings, *, live_then: bool = True) -> ProfilesAndTriggers:
    """A sink whose consumer has caught up at T0: decisions are taken at once. The events
    are dated in the past: ``live_then`` decides them as a worker running when they
    happened would have (max_age measures their age on that clock), else on today's."""
    sink = ProfilesAndTriggers.from_settings(settings)
    sink.observe_event_time({("test", 0): T0}, behind={}, written={}, heard={})
    if live_then:
        sink.writer.wall_ms = lambda: sink.time.read_up_to_ms(0)
    return sink


@pytest.fixture
async def sink(rule_settings: Settings) -> AsyncIterator[ProfilesAndTriggers]:
    sink = started(rule_settings)
    yield sink
    await sink.close()


def advance(sink: ProfilesAndTriggers, minutes: float) -> None:
    """Event time reaches T0 + minutes (as if a partition's newest event were that late)."""
    sink.observe_event_time(
        {("test", 0): T0 + timedelta(minutes=minutes)}, behind={}, written={}, heard={}
    )


async def outbox(sink: ProfilesAndTriggers) -> list[dict[str, Any]]:
    client, keys = sink.client, sink.keys
    found = []
    for base in keys.trigger_shards():
        for _id, fields in await client.xrange(keys.outbox(base)) or []:
            assert fields is not None
            found.append(orjson.loads(fields[b"event"]))
    return found


async def test_an_abandoned_cart_fires_once_at_its_deadline(sink: ProfilesAndTriggers) -> None:
    await sink.handle([registered(0), cart_add(1)])
    advance(sink, 30)
    assert not await sink.fire_due()  # due at 31 minutes, not before
    advance(sink, 31)
    outcomes = await sink.fire_due()
    assert outcomes["sent"] == 1
    (trigger,) = await outbox(sink)
    assert trigger["type"] == "trigger.abandoned"
    assert trigger["time"].startswith("2026-03-01T04:31:00")
    assert trigger["data"]["items"] == ["tea-1"]
    assert "not followed by order.placed within 30m" in trigger["data"]["reason"][-1]["condition"]
    assert not await sink.fire_due()  # gone once fired


async def test_an_order_inside_the_window_cancels_the_coupon(sink: ProfilesAndTriggers) -> None:
    await sink.handle([registered(0), cart_add(1)])
    await sink.triggers.on_events([placed(20)])
    advance(sink, 120)
    assert await sink.fire_due() == {"cancelled": 1}
    assert await outbox(sink) == []


async def test_an_order_read_before_the_cart_add_it_follows_still_cancels(
    sink: ProfilesAndTriggers,
) -> None:
    """The order topic read ahead of the cart topic: arms and cancels meet in the order
    they happened, not the order they were read."""
    await sink.handle([registered(0)])
    await sink.triggers.on_events([placed(20)])
    await sink.triggers.on_events([cart_add(1)])
    advance(sink, 120)
    assert await sink.fire_due() == {"cancelled": 1}
    assert await outbox(sink) == []


async def test_a_redelivered_batch_sends_nothing_twice(sink: ProfilesAndTriggers) -> None:
    batch = [registered(0), event("review.posted", 5, {"item_id": "tea-1", "rating": 1})]
    await sink.handle(batch)
    await sink.handle(batch)
    outcomes = await sink.triggers.on_events(batch)
    assert outcomes["duplicate"] == 1
    (trigger,) = await outbox(sink)
    assert trigger["data"]["channel"] == "service_desk"
    assert trigger["data"]["reason"][-1]["values"] == {"event.data.rating": 1}


async def test_cooldown_and_quiet_hours(sink: ProfilesAndTriggers) -> None:
    delivered = {"order_id": "o1"}
    await sink.handle([registered(0)])
    first = await sink.triggers.on_events([event("order.delivered", 60, delivered)])
    assert first["sent"] == 1
    again = await sink.triggers.on_events([event("order.delivered", 24 * 60, delivered)])
    assert again["cooldown"] == 1
    # 8 days on, at 23:00 in Shanghai: held until 08:00 there, not dropped.
    night = 8 * 24 * 60 + 11 * 60
    held = await sink.triggers.on_events([event("order.delivered", night, delivered)])
    assert held["held"] == 1
    assert len(await outbox(sink)) == 1
    opens = T0 + timedelta(minutes=night) + timedelta(hours=9)
    assert await sink.held.release(int(opens.timestamp() * 1000) - 1) == 0
    assert await sink.held.release(int(opens.timestamp() * 1000)) == 1
    assert len(await outbox(sink)) == 2

    # The customer's decision log says what became of each, newest first, and why.
    decisions = DecisionReader(sink.client, sink.keys)
    log = await decisions.log("s1", "c1")
    assert [entry["outcome"] for entry in log] == ["released", "held", "cooldown", "sent"]
    assert {entry["rule"] for entry in log[1:]} == {"survey"}
    assert log[2]["at"] == int((T0 + timedelta(minutes=24 * 60)).timestamp() * 1000)
    assert log[2]["caused_by"]
    assert log[2]["trigger_id"] != log[3]["trigger_id"]
    assert log[0]["trigger_id"] == log[1]["trigger_id"]
    assert log[1]["release_at"] == int(opens.timestamp() * 1000)  # "held until 08:00"
    assert "release_at" not in log[3]
    fired = await decisions.fired("s1", "c1")
    assert [entry["outcome"] for entry in fired] == ["decided", "cooldown", "decided"]
    reader = sink.triggers.reader
    groups = SegmentReader(sink.client, sink.keys)
    document = await export_customer(reader, groups, decisions, "s1", "c1")
    assert document is not None
    assert document["facts"]["consents"]["sms"] is True
    assert document["decisions"] == log
    assert document["triggers"] == fired
    assert await export_customer(reader, groups, decisions, "s1", "nobody") is None


async def test_the_decision_log_keeps_the_last_few(rule_settings: Settings) -> None:
    short = rule_settings.triggers.model_copy(update={"decision_log": 3})
    sink = started(rule_settings.model_copy(update={"triggers": short}))
    try:
        await sink.handle([registered(0)])
        for day in range(5):
            await sink.triggers.on_events(
                [event("order.delivered", 60 + day * 24 * 60, {"order_id": f"o{day}"})]
            )
        log = await DecisionReader(sink.client, sink.keys).log("s1", "c1")
        assert [entry["outcome"] for entry in log] == ["cooldown", "cooldown", "cooldown"]
        days = [(entry["at"] - int(T0.timestamp() * 1000)) // 86_400_000 for entry in log]
        assert days == [4, 3, 2]
    finally:
        await sink.close()


async def test_no_consent_no_marketing(sink: ProfilesAndTriggers) -> None:
    await sink.handle([event("customer.registered", 0, {"consents": {"marketing": False}})])
    outcomes = await sink.triggers.on_events([event("order.delivered", 60, {"order_id": "o"})])
    assert outcomes["no_consent"] == 1
    assert await outbox(sink) == []


async def test_a_daily_cap_per_channel_in_local_days(rule_settings: Settings) -> None:
    capped = rule_settings.triggers.model_copy(update={"daily_cap": 1})
    sink = started(rule_settings.model_copy(update={"triggers": capped}))
    try:
        await sink.handle([registered(0), registered(0, who="c2")])
        await sink.handle([cart_add(1)])
        advance(sink, 40)
        await sink.fire_due()  # push, once today
        await sink.handle([cart_add(50)])
        advance(sink, 90)
        outcomes = await sink.fire_due()
        assert outcomes["capped"] == 1
        assert len(await outbox(sink)) == 1
    finally:
        await sink.close()


async def test_workers_racing_on_due_timers_fire_each_once(rule_settings: Settings) -> None:
    sinks = [started(rule_settings) for _ in range(3)]
    try:
        customers = [f"c{n}" for n in range(200)]
        await sinks[0].handle([registered(0, who) for who in customers])
        await sinks[0].handle([cart_add(1, who) for who in customers])
        for sink in sinks:
            advance(sink, 60)
        results = await asyncio.gather(*(sink.fire_due() for sink in sinks))
        assert sum(result["sent"] for result in results) == len(customers)
        triggers = await outbox(sinks[0])
        assert len(triggers) == len(customers)
        assert len({t["subject"] for t in triggers}) == len(customers)
    finally:
        for sink in sinks:
            await sink.close()


BIRTHDAY = """
id: birthday
version: 1
description: birthday greeting at nine
when: {schedule: {daily: "09:00", occasion: birthday}}
then: {channels: [sms], template: birthday}
"""
WINBACK = """
id: winback
version: 1
description: no order for 180 days
when: {schedule: {daily: "10:00", occasion: dormant, days: 180}}
if: profile.counters.orders > 0
then: {channels: [sms], template: winback}
"""


async def test_schedules_fire_once_in_local_time(rule_settings: Settings, rule_dir: Path) -> None:
    (rule_dir / "birthday.yaml").write_text(BIRTHDAY)
    (rule_dir / "winback.yaml").write_text(WINBACK)
    sink = started(rule_settings)
    every_ms = rule_settings.triggers.schedule_every_s * 1000
    try:
        consents = {"marketing": True, "sms": True}
        await sink.handle(
            [
                event("customer.registered", 0, {"consents": consents, "birthday": "1990-03-02"}),
                event("customer.registered", 0, {"consents": consents}, who="c2"),
                placed(1, who="c2"),
            ]
        )
        # 2026-03-01 20:00 UTC is 04:00 on 2 March in Shanghai: the birthday, before nine.
        night = int(datetime(2026, 3, 1, 20, tzinfo=UTC).timestamp() * 1000)
        assert not await sink.schedules.run(night)
        morning = night + 5 * 3_600_000 + 5 * 60_000  # 09:05 in Shanghai
        assert (await sink.schedules.run(morning))["sent"] == 1
        assert (await sink.schedules.run(morning + every_ms))["duplicate"] == 1
        (greeting,) = await outbox(sink)
        assert greeting["data"]["rule"] == "birthday"
        assert greeting["subject"] == "c1"
        assert greeting["data"]["reason"][0]["values"]["profile.facts.birthday"] == "1990-03-02"

        # 181 days after c2's only order, at 10:30 in Shanghai.
        later = int(datetime(2026, 8, 29, 2, 30, tzinfo=UTC).timestamp() * 1000)
        assert (await sink.schedules.run(later))["sent"] == 1
        assert (await sink.schedules.run(later + every_ms))["duplicate"] == 1
        assert sorted(t["subject"] for t in await outbox(sink)) == ["c1", "c2"]
    finally:
        await sink.close()


async def test_a_due_timer_fires_as_it_stands_whatever_comes_after_its_deadline(
    sink: ProfilesAndTriggers,
) -> None:
    await sink.handle([registered(0)])
    # Read before the timer pump ran: an order after the deadline does not cancel, and a
    # new cart add after it arms afresh instead of moving the due timer.
    await sink.triggers.on_events([cart_add(1), placed(40), cart_add(45)])
    advance(sink, 200)
    outcomes = await sink.fire_due()
    assert outcomes["sent"] == 2
    assert "cancelled" not in outcomes
    times = sorted(t["time"][11:16] for t in await outbox(sink))
    assert times == ["04:31", "05:15"]


async def test_an_occurrence_decided_later_than_its_max_age_is_expired_not_sent(
    rule_settings: Settings, rule_dir: Path
) -> None:
    (rule_dir / "bad-review.yaml").write_text(
        BAD_REVIEW.replace(
            "limits: {transactional: true}", "limits: {transactional: true, max_age: 2h}"
        )
    )
    sink = started(rule_settings, live_then=False)  # decided today, months after T0
    try:
        await sink.handle([registered(0)])
        review = event("review.posted", 5, {"item_id": "t", "rating": 1})
        outcomes = await sink.triggers.on_events([review])
        assert outcomes == Counter({"expired": 1})
        assert await outbox(sink) == []
        # Decided again (a batch delivered twice): expired again, but counted once.
        assert await sink.triggers.on_events([review]) == Counter({"expired": 1})
        (stats,) = await read_rule_stats(sink.client, sink.keys)
        assert (stats.rule, stats["expired"], stats.reached, stats.fired) == ("bad-review", 1, 0, 1)
        # An absence rule's deadline is its occurrence: months ago, so it expires too
        # (the default max_age, a day).
        await sink.handle([cart_add(10)])
        advance(sink, 60)
        assert (await sink.fire_due())["expired"] == 1
    finally:
        await sink.close()


async def test_trigger_functions_come_back_after_redis_lost_them(
    sink: ProfilesAndTriggers,
) -> None:
    await sink.handle([registered(0)])
    await sink.client.function_delete(TRIGGER_LIBRARY.name)
    outcomes = await sink.triggers.on_events(
        [event("review.posted", 5, {"item_id": "t", "rating": 1})]
    )
    assert outcomes["sent"] == 1


async def test_an_erasure_takes_the_customers_timers_and_their_marks(
    sink: ProfilesAndTriggers,
) -> None:
    await sink.handle([registered(0), cart_add(1)])
    timing = sink.keys.partition(0)
    client = sink.client
    advance(sink, 2)
    await sink.fire_due()
    assert await client.zcard(timing.timers) == 1
    await sink.handle([event("customer.erasure_requested", 5)])
    advance(sink, 6)
    await sink.fire_due()
    assert await client.zcard(timing.timers) == 0
    assert await client.hlen(timing.payloads) == 0  # no value, no mark naming the customer
    advance(sink, 60)
    assert not await sink.fire_due()


async def test_an_arm_delivered_again_after_its_cancel_changes_nothing(
    sink: ProfilesAndTriggers,
) -> None:
    await sink.handle([registered(0)])
    add = cart_add(1)
    await sink.handle([add, placed(10)])  # the order cancels the timer
    advance(sink, 15)
    assert await sink.fire_due() == {"cancelled": 1}
    await sink.handle([add])  # the cart add again, as a producer retry would send it
    advance(sink, 60)
    assert not await sink.fire_due()
    assert await outbox(sink) == []


async def test_a_customer_is_found_by_phone_until_the_number_changes_or_they_are_erased(
    sink: ProfilesAndTriggers, settings: Settings
) -> None:
    client, keys = sink.client, sink.keys
    hash_key = settings.privacy_hash_key()
    assert hash_key is not None

    async def by_phone(phone: str, shop: str = "s1") -> str | None:
        return await customer_by_phone(client, keys, hash_key, shop, phone)

    await sink.handle([event("customer.registered", 0, {"phone": "+86 138-0013-8000"})])
    assert await by_phone("13800138000") == "c1"
    assert await by_phone("+86 13800138000") == "c1"
    assert await by_phone("13800138000", shop="s2") is None
    assert await by_phone("13800138001") is None
    assert await by_phone("not a phone") is None
    await sink.handle([event("customer.updated", 5, {"phone": "13900139000"})])
    assert await by_phone("13800138000") is None
    assert await by_phone("13900139000") == "c1"
    await sink.handle([event("customer.erasure_requested", 10)])
    assert await by_phone("13900139000") is None
    for base in keys.trigger_shards():
        assert await client.hlen(keys.phones(base)) == 0


async def test_a_rule_decided_on_arrival_does_not_wait_for_a_partition_read_behind(
    sink: ProfilesAndTriggers,
) -> None:
    """A partition read behind puts decisions off until its event time passes them; a
    service follow-up on its own event (rules/ordering.py) cannot be changed by an event
    still to read, and goes at once. The survey, a marketing send, waits."""
    assert sink.stage.rules.by_id["bad-review"].ordering.on_arrival
    assert not sink.stage.rules.by_id["survey"].ordering.on_arrival
    await sink.handle([registered(0)])
    sink.observe_event_time(
        {("test", 0): T0 + timedelta(minutes=1)}, behind={("test", 0): 5_000}, written={},
        heard={},
    )  # fmt: skip
    assert sink.time.defer(0)
    review = event("review.posted", 2, {"item_id": "tea-1", "rating": 1})
    delivered = event("order.delivered", 2, {"order_id": "o1"})
    outcomes = await sink.triggers.on_events([review, delivered], [0, 0])
    assert (outcomes["sent"], outcomes["deferred"]) == (1, 1), outcomes
    assert [trigger["data"]["rule"] for trigger in await outbox(sink)] == ["bad-review"]


async def test_a_batch_reads_its_profiles_back_in_its_own_profile_call(
    sink: ProfilesAndTriggers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rules and segments read the profiles the profile call gave back: no read of their
    own. Only a profile it did not give back is read."""
    reads: list[ReadProfiles] = []
    run = FunctionLibrary.run

    async def counted(self: FunctionLibrary, calls: Sequence[Any], **kwargs: Any) -> Any:
        reads.extend(call for call in calls if isinstance(call, ReadProfiles))
        return await run(self, calls, **kwargs)

    monkeypatch.setattr(FunctionLibrary, "run", counted)
    review = event("review.posted", 2, {"item_id": "tea-1", "rating": 1}, who="c2")
    applied = await sink.handle([registered(0), registered(1, "c2"), cart_add(1), review])
    assert applied.read_back is not None
    assert set(applied.read_back.stored) >= {("s1", "c1"), ("s1", "c2")}
    assert reads == []
    assert [trigger["data"]["rule"] for trigger in await outbox(sink)] == ["bad-review"]
    known = applied.read_back
    stored = await sink.reader.read_stored([("s1", "c1"), ("s1", "c3")], {"facts"}, known)
    assert stored[("s1", "c3")] is None
    assert len(reads) == 1
    assert [base.base for base in reads[0].customers] == [sink.keys.customer_base("s1", "c3")]
