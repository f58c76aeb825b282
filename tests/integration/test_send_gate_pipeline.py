"""The shop's send gate through the engine: two rules would each send an SMS to the same
customer on the same local day, with a cap of one. The higher priority goes, whichever
was decided first within the shop's window; the other is logged with who took the slot.
With no window, sends decided together are ranked, and nothing is held."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from crmstream.settings import Settings
from handlers.pipeline import ProfilesAndTriggers
from handlers.triggers.decisions import DecisionReader
from schemas.events import Envelope
from tests.integration.test_trigger_stage import T0, cart_add, event, outbox, placed

BROWSED = """
id: cart-nudge
version: 1
description: a nudge for what went into the cart
priority: 20
when: {event: cart.item_added}
then: {channels: [sms], template: cart}
limits: {max_age: 30d}
"""
ORDERED = """
id: order-thanks
version: 1
description: thanks for the order
priority: 80
when: {event: order.placed}
then: {channels: [sms], template: thanks}
limits: {max_age: 30d}
"""
WALL_MS = int(T0.timestamp() * 1000)


def registered(minutes: float, who: str = "c1", zone: str = "Asia/Shanghai") -> Envelope:
    consents = {"marketing": True, "sms": True}
    return event("customer.registered", minutes, {"consents": consents, "timezone": zone}, who)


class Clock:
    def __init__(self) -> None:
        self.ms = WALL_MS

    def __call__(self) -> int:
        return self.ms


Started = Callable[[str], ProfilesAndTriggers]


@pytest.fixture
async def started(settings: Settings, tmp_path: Path) -> AsyncIterator[Started]:
    """A sink for a shop whose send gate is ``gate`` (YAML), on a wall clock of the test's."""
    sinks: list[ProfilesAndTriggers] = []

    def start(gate: str) -> ProfilesAndTriggers:
        rules, shops = tmp_path / f"rules{len(sinks)}", tmp_path / f"shops{len(sinks)}"
        rules.mkdir()
        shops.mkdir()
        (rules / "cart-nudge.yaml").write_text(BROWSED)
        (rules / "order-thanks.yaml").write_text(ORDERED)
        (shops / "default.yaml").write_text(f"send_gate: {gate}\n")
        triggers = settings.triggers.model_copy(
            update={"rules_dir": rules, "timer_disorder_s": 0.0, "timer_idle_s": 3600.0}
        )
        profiles = settings.profiles.model_copy(update={"shop_config_dir": shops})
        sink = ProfilesAndTriggers.from_settings(
            settings.model_copy(update={"triggers": triggers, "profiles": profiles})
        )
        sink.observe_event_time({("test", 0): T0}, behind={}, written={}, heard={})
        sink.writer.wall_ms = Clock()
        sinks.append(sink)
        return sink

    yield start
    for sink in sinks:
        await sink.close()


async def handle(sink: ProfilesAndTriggers, *events: Envelope) -> None:
    newest = max(envelope.time for envelope in events)
    await sink.handle(list(events))
    sink.observe_event_time({("test", 0): newest}, behind={}, written={}, heard={})
    await sink.fire_due()


def clock_of(sink: ProfilesAndTriggers) -> Clock:
    clock = sink.writer.wall_ms
    assert isinstance(clock, Clock)
    return clock


async def sent_rules(sink: ProfilesAndTriggers) -> list[str]:
    return [trigger["data"]["rule"] for trigger in await outbox(sink)]


async def log_of(sink: ProfilesAndTriggers, who: str = "c1") -> list[dict[str, Any]]:
    return list(reversed(await DecisionReader(sink.client, sink.keys).log("s1", who)))


WINDOW = "{window: 60s, caps: {sms: {day: 1}}}"


@pytest.mark.parametrize("lower_first", [True, False])
async def test_the_higher_priority_wins_the_last_slot_within_the_window(
    started: Started, lower_first: bool
) -> None:
    sink = started(WINDOW)
    clock = clock_of(sink)
    first, second = (cart_add(1), placed(2)) if lower_first else (placed(1), cart_add(2))
    await handle(sink, registered(0), first)
    assert await sent_rules(sink) == []  # the last slot waits out the window
    clock.ms += 20_000
    await handle(sink, second)
    clock.ms += 60_000
    await sink.held.release(clock.ms)
    assert await sent_rules(sink) == ["order-thanks"]
    capped = [entry for entry in await log_of(sink) if entry["outcome"] == "capped"]
    assert [entry["rule"] for entry in capped] == ["cart-nudge"]
    assert capped[0]["capped_by"] == {"rule": "order-thanks", "priority": 80, "span": "day"}


async def test_with_no_window_the_first_decided_goes_at_once(started: Started) -> None:
    sink = started("{caps: {sms: {day: 1}}}")
    await handle(sink, registered(0), cart_add(1))
    assert await sent_rules(sink) == ["cart-nudge"]  # nothing held
    await handle(sink, placed(2))
    assert await sent_rules(sink) == ["cart-nudge"]
    (capped,) = [entry for entry in await log_of(sink) if entry["outcome"] == "capped"]
    assert capped["rule"] == "order-thanks"
    assert capped["capped_by"] == {"rule": "cart-nudge", "priority": 20, "span": "day"}


async def test_sends_decided_together_are_ranked(started: Started) -> None:
    sink = started("{caps: {sms: {day: 1}}}")
    await handle(sink, registered(0), cart_add(1), placed(2))
    assert await sent_rules(sink) == ["order-thanks"]


@pytest.mark.parametrize(
    ("zone", "same_local_day"),
    [("Asia/Shanghai", True), ("America/Los_Angeles", False)],
)
async def test_days_are_the_customers_own(
    started: Started, zone: str, same_local_day: bool
) -> None:
    """T0 is 04:00 UTC: 12:00 in Shanghai, 20:00 the day before in Los Angeles; six hours
    on, Shanghai is still on its day, Los Angeles on the next."""
    sink = started("{caps: {sms: {day: 1}}}")
    await handle(sink, registered(0, zone=zone), cart_add(1))
    await handle(sink, placed(6 * 60))
    expected = ["cart-nudge"] if same_local_day else ["cart-nudge", "order-thanks"]
    assert await sent_rules(sink) == expected


async def test_a_week_of_local_days(started: Started) -> None:
    sink = started("{caps: {sms: {day: 1, week: 2}}}")
    await handle(sink, registered(0), cart_add(1))
    for day in range(1, 8):
        at = timedelta(days=day).total_seconds() / 60 + 1
        await handle(sink, cart_add(at))
    # Day 0 and day 1 take the week's two; days 2 to 6 are capped; on day 7, day 0 is out of
    # the seven and a slot is free.
    assert len(await sent_rules(sink)) == 3
    capped = [entry for entry in await log_of(sink) if entry["outcome"] == "capped"]
    assert len(capped) == 5
    assert {entry["capped_by"]["span"] for entry in capped} == {"week"}
