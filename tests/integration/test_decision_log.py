"""One entry in a customer's decision log per occurrence and decision, whichever path
decided it (on the event, put off while behind, by a timer, released after quiet hours)
and however often it was decided again (a batch delivered twice, a walk that a later arm
met, another event of the same occurrence)."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from crmstream.settings import Settings
from handlers.pipeline import ProfilesAndTriggers
from handlers.triggers.decisions import DecisionReader
from tests.integration.test_trigger_stage import (
    T0,
    advance,
    cart_add,
    event,
    outbox,
    placed,
    registered,
    rule_dir,
    rule_settings,
    sink,
    started,
)

__all__ = ["rule_dir", "rule_settings", "sink"]  # fixtures, used by name

PARTITION = ("test", 0)


async def entries(sink: ProfilesAndTriggers, who: str = "c1") -> Counter[tuple[str, str, str]]:
    """(rule, trigger id, outcome) → how many times the customer's log holds it."""
    log = await DecisionReader(sink.client, sink.keys).log("s1", who)
    return Counter((entry.get("rule", "?"), entry["trigger_id"], entry["outcome"]) for entry in log)


def once_each(log: Counter[tuple[str, str, str]]) -> None:
    assert log, "nothing was logged"
    twice = {entry: count for entry, count in log.items() if count > 1}
    assert not twice, f"logged more than once: {twice}"


async def test_on_event_and_redelivered(sink: ProfilesAndTriggers) -> None:
    review = event("review.posted", 5, {"item_id": "tea-1", "rating": 1})
    batch = [registered(0), review]
    await sink.handle(batch)
    await sink.handle(batch)  # the batch again, as after a crash before its offsets
    assert (await sink.triggers.on_events([review]))["duplicate"] == 1
    log = await entries(sink)
    once_each(log)
    assert [outcome for _, _, outcome in log] == ["sent"]


async def test_put_off_while_behind_then_decided_once(rule_settings: Settings) -> None:
    sink = started(rule_settings)
    try:
        await sink.handle([registered(0)])
        # Behind: the partition's newest event is read, but more waits after it. The survey
        # (a marketing send) is decided in event-time order.
        delivered = event("order.delivered", 5, {"order_id": "o1"})
        behind = {PARTITION: 100}
        at = T0 + timedelta(minutes=5)
        sink.observe_event_time({PARTITION: at}, behind=behind, written={}, heard={})
        await sink.handle([delivered])
        await sink.handle([delivered])  # delivered twice while still behind
        assert await entries(sink) == Counter()  # nothing decided yet
        sink.observe_event_time({PARTITION: at}, behind={}, written={}, heard={})
        await sink.fire_due()
        await sink.handle([delivered])  # and again once caught up
        log = await entries(sink)
        once_each(log)
        assert [outcome for _, _, outcome in log] == ["sent"]
    finally:
        await sink.close()


async def test_a_timer_met_by_a_later_arm_in_the_same_walk(sink: ProfilesAndTriggers) -> None:
    """The walk takes the due timer, then applies a cart add that came after its deadline:
    the add arms afresh, and the timer taken fires once, not again under its due name."""
    await sink.handle([registered(0)])
    events = [cart_add(1), placed(40), cart_add(45)]
    await sink.triggers.on_events(events)
    advance(sink, 200)
    # Decided once each: nothing comes back as a duplicate of the walk's own work.
    assert await sink.fire_due() == Counter({"sent": 2})
    assert not await sink.fire_due()
    await sink.triggers.on_events(events)  # delivered again
    advance(sink, 400)
    await sink.fire_due()
    log = await entries(sink)
    once_each(log)
    assert sorted(outcome for _, _, outcome in log) == ["sent", "sent"]
    assert len(await outbox(sink)) == 2
    timing = sink.keys.partition(0)
    assert await sink.client.zcard(timing.timers) == 0
    assert await sink.client.zcard(timing.taken) == 0


async def test_a_timer_met_by_a_later_arm_that_an_order_then_cancels(
    sink: ProfilesAndTriggers,
) -> None:
    """As above, and an order cancels the new timer within the same walk: the timer the
    walk took is still struck off once decided, not left to be decided again later."""
    await sink.handle([registered(0)])
    await sink.triggers.on_events([cart_add(1), cart_add(45), placed(50)])
    advance(sink, 200)
    assert await sink.fire_due() == Counter({"sent": 1, "cancelled": 1})
    timing = sink.keys.partition(0)
    client = sink.client
    assert await client.zcard(timing.taken) == 0
    advance(sink, 400)
    assert not await sink.fire_due()
    log = await entries(sink)
    once_each(log)
    assert [outcome for _, _, outcome in log] == ["sent"]


async def test_held_for_quiet_hours_then_released(sink: ProfilesAndTriggers) -> None:
    await sink.handle([registered(0)])
    night = 11 * 60  # 23:00 in Shanghai
    delivered = event("order.delivered", night, {"order_id": "o1"})
    assert (await sink.triggers.on_events([delivered]))["held"] == 1
    await sink.triggers.on_events([delivered])
    opens = int((T0 + timedelta(minutes=night, hours=9)).timestamp() * 1000)
    assert await sink.held.release(opens) == 1
    assert await sink.held.release(opens + 60_000) == 0
    await sink.triggers.on_events([delivered])  # redelivered after its release
    log = await entries(sink)
    once_each(log)
    assert sorted(outcome for _, _, outcome in log) == ["held", "released"]
    assert len({trigger_id for _, trigger_id, _ in log}) == 1


async def test_an_expired_occurrence_decided_again(rule_settings: Settings) -> None:
    """Decided later than its max_age, then again by a second delivery and a later walk."""
    sink = started(rule_settings, live_then=False)  # decided today, months after T0
    try:
        await sink.handle([registered(0)])
        add = cart_add(1)
        await sink.handle([add])
        advance(sink, 60)
        assert (await sink.fire_due())["expired"] == 1
        review = event("review.posted", 70, {"item_id": "tea-1", "rating": 1})
        for _ in range(3):
            await sink.handle([add, review])
        advance(sink, 120)
        await sink.fire_due()
        log = await entries(sink)
        once_each(log)
        assert sorted(outcome for _, _, outcome in log) == ["expired", "expired"]
    finally:
        await sink.close()


async def test_an_occurrence_without_consent_decided_again(sink: ProfilesAndTriggers) -> None:
    await sink.handle([event("customer.registered", 0, {"consents": {}})])
    delivered = event("order.delivered", 60, {"order_id": "o1"})
    for _ in range(3):
        assert (await sink.triggers.on_events([delivered]))["no_consent"] == 1
    log = await entries(sink)
    once_each(log)
    assert [outcome for _, _, outcome in log] == ["consent"]
