"""One send gate across rules and journeys, through the engine: sends decided together
meet the customer's caps in the order of their priority, whichever of a rule or a journey
they come from and whatever the journeys are named. A registration read while its
partition is behind puts the welcome rule's decision off, and enters the journeys in the
same walk: with one SMS a day, the highest priority of the three is the one sent. The
journeys here are one send and nothing after it: an instance enters, sends and leaves in
one move."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path

import pytest

from crmstream.settings import Settings
from handlers.pipeline import ProfilesAndTriggers
from tests.integration.test_send_gate_pipeline import log_of, registered, sent_rules
from tests.integration.test_trigger_stage import T0, placed

# A journey entered on registration, of the name and priority given, and its steps.
ENTERED = """
id: {name}
version: 1
description: a journey of the test's
priority: {priority}
entry: {{event: customer.registered}}
steps:
"""
JOURNEY = ENTERED + "  - {{id: hello, send: {{channels: [sms], template: hello}}}}\n"
# Both wait for the first order, and thank for it by SMS.
AWAITING = (
    ENTERED
    + "  - id: first-order\n    wait_for: {{event: order.placed, timeout: 7d}}\n"
    + "  - {{id: thanks, send: {{channels: [sms], template: thanks}}}}\n"
)
RULE = """
id: welcome-rule
version: 1
description: a welcome
priority: {priority}
when: {{event: customer.registered}}
then: {{channels: [sms], template: welcome}}
limits: {{max_age: 30d}}
"""
Started = Callable[[int, int, int, str], ProfilesAndTriggers]


@pytest.fixture
async def started(settings: Settings, tmp_path: Path) -> AsyncIterator[Started]:
    """A sink whose shop sends one marketing SMS a day, with a welcome rule and two
    journeys (``a-journey``, ``b-journey``, each of ``journey``) of the priorities given."""
    sinks: list[ProfilesAndTriggers] = []

    def start(rule: int, first: int, second: int, journey: str = JOURNEY) -> ProfilesAndTriggers:
        rules, journeys, shops = (tmp_path / name for name in ("rules", "journeys", "shops"))
        for folder in (rules, journeys, shops):
            folder.mkdir()
        (rules / "welcome-rule.yaml").write_text(RULE.format(priority=rule))
        for name, priority in (("a-journey", first), ("b-journey", second)):
            (journeys / f"{name}.yaml").write_text(journey.format(name=name, priority=priority))
        (shops / "default.yaml").write_text(
            "journeys: [a-journey, b-journey]\nsend_gate: {window: 0s, caps: {sms: {day: 1}}}\n"
        )
        triggers = settings.triggers.model_copy(
            update={"rules_dir": rules, "journeys_dir": journeys, "timer_disorder_s": 0.0,
                    "timer_idle_s": 3600.0}
        )  # fmt: skip
        profiles = settings.profiles.model_copy(update={"shop_config_dir": shops})
        sink = ProfilesAndTriggers.from_settings(
            settings.model_copy(update={"triggers": triggers, "profiles": profiles})
        )
        sink.writer.wall_ms = lambda: int(T0.timestamp() * 1000)
        sinks.append(sink)
        return sink

    yield start
    for sink in sinks:
        await sink.close()


async def welcome_read_behind(sink: ProfilesAndTriggers) -> None:
    """The registration read while its partition is behind, then walked once caught up."""
    sink.observe_event_time({("test", 0): T0}, behind={("test", 0): 5_000}, written={}, heard={})
    await sink.handle([registered(1)])
    caught_up = T0 + timedelta(minutes=2)
    sink.observe_event_time({("test", 0): caught_up}, behind={}, written={}, heard={})
    await sink.fire_due()


@pytest.mark.parametrize(
    ("rule", "first", "second", "sent"),
    [
        (80, 40, 30, "welcome-rule"),  # the rule outranks both journeys
        (50, 40, 60, "b-journey"),  # the later-named journey outranks all
        (50, 60, 40, "a-journey"),
        (20, 30, 40, "b-journey"),  # the rule, lowest, goes last
    ],
)
async def test_the_highest_priority_of_a_rule_and_journeys_decided_together_takes_the_slot(
    started: Started, rule: int, first: int, second: int, sent: str
) -> None:
    sink = started(rule, first, second, JOURNEY)
    await welcome_read_behind(sink)
    assert await sent_rules(sink) == [sent]
    capped = [entry for entry in await log_of(sink) if entry["outcome"] == "capped"]
    assert len(capped) == 2, capped


@pytest.mark.parametrize(
    ("first", "second", "sent"), [(30, 60, "b-journey"), (60, 30, "a-journey")]
)
async def test_instances_an_event_moves_to_a_send_meet_the_caps_highest_priority_first(
    started: Started, first: int, second: int, sent: str
) -> None:
    """The next day's first order ends both journeys' waits in one walk, and both would
    thank by SMS: the instance of the higher priority takes the day's one SMS."""
    sink = started(10, first, second, AWAITING)
    await welcome_read_behind(sink)
    assert await sent_rules(sink) == ["welcome-rule"]
    next_day = T0 + timedelta(days=1)
    order = placed(24 * 60)
    sink.observe_event_time({("test", 0): next_day}, behind={("test", 0): 5_000}, written={},
                            heard={})  # fmt: skip
    await sink.handle([order])
    later = next_day + timedelta(minutes=2)
    sink.observe_event_time({("test", 0): later}, behind={}, written={}, heard={})
    await sink.fire_due()
    assert await sent_rules(sink) == ["welcome-rule", sent]
