"""No phone number or e-mail address in clear: a backlog full of them is drained by a real
worker while Redis is scanned, keys and values, again and again; then every topic the
engine writes is read through."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import orjson
import pytest

from crmstream.admin import create_topics
from crmstream.settings import Settings
from crmstream.topics import TopicNames
from tests.integration.test_profiles import publish, simulated
from tests.redis_contents import put_off, redis_holding, taken
from tests.support import chosen_seed, consume, eventually, running_worker

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

SEED = 4242


def with_contacts(events: list[dict[str, Any]], rng: random.Random) -> list[bytes]:
    """Give every registration a phone number and an e-mail address; return them (the
    phone as its digits, as a scan must find it however it was spelled)."""
    needles: list[bytes] = []
    for n, event in enumerate(e for e in events if e["type"] in {"customer.registered"}):
        digits = f"199{rng.randrange(10**8):08d}"
        spelled = rng.choice([digits, f"+86 {digits}", f"{digits[:3]}-{digits[3:7]}-{digits[7:]}"])
        email = f"reach.me.{n}.{rng.randrange(10**6)}@contact-test.example"
        event["data"] = {**event["data"], "phone": spelled, "email": email}
        needles += [digits.encode(), email.encode()]
    return needles


def test_a_backlog_full_of_contact_details_leaves_none_in_clear(
    settings: Settings, tmp_path: Path
) -> None:
    seed = chosen_seed("CONTACTS_SEED", SEED)
    rng = random.Random(seed)
    events = simulated(tmp_path / "events.jsonl", 4_000, seed=seed)
    needles = with_contacts(events, rng)
    assert len(needles) > 100
    create_topics(settings)
    publish(settings, events)

    scans = 0

    def taken_after_a_clean_scan() -> int:
        nonlocal scans
        found = redis_holding(settings, needles)
        assert found == {}, f"in clear while draining (scan {scans}): {found}"
        scans += 1
        return taken(settings)

    with running_worker(settings, tmp_path / "worker.log"):
        eventually(
            taken_after_a_clean_scan, 300, f"all {len(events)} events taken",
            until=lambda count: count >= len(events),
        )  # fmt: skip
        # What was put off during the drain is decided once event time catches up: only
        # then has every decision that could write a contact detail been made.
        eventually(
            lambda: put_off(settings), 120, "every decision put off during the drain made",
            until=lambda left: left == 0,
        )  # fmt: skip
        assert redis_holding(settings, needles) == {}
    assert scans >= 3, "the drain was too quick to be watched"

    topics = TopicNames.from_settings(settings.topics)
    written = consume(settings, [topics.triggers, topics.segments, topics.dlq], 10**9, 15)
    assert written, "the engine wrote nothing to scan"
    for message in written:
        value = message.value() or b""
        assert not any(needle in value for needle in needles), orjson.loads(value)
