"""Rule statistics against the real Redis: a known holdout split and known conversions,
counted exactly, whatever order the events are read in and however often."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest

from crmstream.settings import Settings
from handlers.pipeline import ProfilesAndTriggers
from handlers.triggers.decide import in_holdout
from handlers.triggers.stats import read_rule_stats
from rules.lift import two_proportions
from schemas.events import Envelope
from streams.cli.child_worker import settings_env
from tests.integration.test_trigger_stage import event, placed, started

WELCOME = """
id: welcome
version: 1
description: welcome a new customer; 30% held out to measure it
when: {event: customer.registered}
then: {channels: [push], template: welcome}
limits: {holdout: 0.3}
goal: {event: order.placed, within: 7d}
"""
DAY = 1440  # minutes
CUSTOMERS = [f"c{n:03d}" for n in range(300)]


def consenting(n: int) -> bool:
    return n % 10 != 9


def orders_of(n: int) -> list[float]:
    """When customer n orders (minutes after registering at n/100 minutes)."""
    if n % 3 == 0:
        return [2.0 * DAY] + ([3.0 * DAY] if n % 2 else [])  # within 7 days (a second one too)
    if n % 3 == 1:
        return [8.0 * DAY]  # too late to count
    return [-60.0] if n % 2 else []  # before the welcome, or never


def registered(n: int) -> Envelope:
    consents = {"marketing": consenting(n), "push": consenting(n)}
    return event("customer.registered", n / 100, {"consents": consents}, CUSTOMERS[n])


@pytest.fixture
async def sink(settings: Settings, tmp_path: Path) -> AsyncIterator[ProfilesAndTriggers]:
    (tmp_path / "welcome.yaml").write_text(WELCOME)
    triggers = settings.triggers.model_copy(update={"rules_dir": tmp_path})
    sink = started(settings.model_copy(update={"triggers": triggers}))
    yield sink
    await sink.close()


async def test_fired_sent_held_out_and_converted_are_exact(sink: ProfilesAndTriggers) -> None:
    orders = [
        placed(n / 100 + at, CUSTOMERS[n]) for n in range(len(CUSTOMERS)) for at in orders_of(n)
    ]
    early = [o for o in orders if int(o.subject[1:]) % 2 == 0]  # type: ignore[index]
    late = [o for o in orders if o not in early]
    # Half the orders are read before the welcomes they follow (another topic, behind):
    # a conversion does not depend on the order of reading. And every batch comes twice.
    for batch in (early, [registered(n) for n in range(len(CUSTOMERS))], late):
        for start in range(0, len(batch), 70):
            await sink.handle(batch[start : start + 70])
            await sink.handle(batch[start : start + 70])

    held_out = {n for n in range(len(CUSTOMERS)) if in_holdout("welcome", "s1", CUSTOMERS[n], 0.3)}
    reachable = [n for n in range(len(CUSTOMERS)) if consenting(n)]
    treated = [n for n in reachable if n not in held_out]
    control = [n for n in reachable if n in held_out]
    converts = {n for n in range(len(CUSTOMERS)) if n % 3 == 0}
    converted, converted_out = len(converts & set(treated)), len(converts & set(control))
    expected = {
        "fired": len(CUSTOMERS),
        "sent": len(treated),
        "holdout": len(control),
        "suppressed": {
            "consent": len(CUSTOMERS) - len(reachable),
            "cooldown": 0,
            "capped": 0,
            "expired": 0,
        },
        "converted": converted,
        "converted_holdout": converted_out,
    }
    assert 60 < len(control) < 120  # the split is what the share says, roughly
    (stats,) = await read_rule_stats(sink.client, sink.keys, "s1")
    shown = stats.as_dict()
    assert {name: shown[name] for name in expected} == expected
    lift = two_proportions(converted, len(treated), converted_out, len(control))
    assert shown["conversion_rate"] == converted / len(treated)
    assert shown["lift"] == lift.lift
    assert shown["lift_ci95"] == [lift.ci_low, lift.ci_high]
    assert await read_rule_stats(sink.client, sink.keys, "another-shop") == []


async def _cli(env: dict[str, str], *args: str) -> bytes:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "streams.cli", "rules", "stats", *args,
        env={**os.environ, **env, "COLUMNS": "200"}, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    stdout, _ = await process.communicate()
    assert process.returncode == 0
    return stdout


async def test_rules_stats_on_the_command_line(sink: ProfilesAndTriggers) -> None:
    await sink.handle([registered(0), placed(DAY, CUSTOMERS[0])])
    env = settings_env(sink.settings)
    (row,) = orjson.loads(await _cli(env, "--shop", "s1", "--json"))["rules"]
    assert row["rule"] == "welcome"
    assert row["fired"] == 1
    assert row["converted"] + row["converted_holdout"] == 1
    assert b"welcome" in await _cli(env)
