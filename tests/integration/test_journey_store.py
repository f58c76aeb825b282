"""Journey instances on a real Redis (journeys.lua through handlers/journeys/store.py):
each stop is one write with what it does, and a stop worked out twice changes nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from crmstream.settings import Settings
from handlers.functions.triggers import Candidate, Decision, JourneyMoved
from handlers.journeys.store import JourneyStore, decode_position, encode_position
from handlers.keys import Keys
from handlers.redis_client import RedisClient, connect
from handlers.triggers.decisions import DecisionReader
from rules.journey_entry import Entries
from rules.journey_machine import Position
from tests.support import text

AT = 1_772_323_200_000  # 2026-03-01T00:00:00Z


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[RedisClient]:
    redis = connect(settings.redis)
    yield redis
    await redis.aclose()


@pytest.fixture
def store(settings: Settings, client: RedisClient) -> JourneyStore:
    return JourneyStore(client, Keys(settings.redis.key_prefix), fired_window_days=30, log_size=50)


def at_step(step: str, visit: int, **changes: object) -> Position:
    position = Position(
        journey="onboarding", version=1, key="", instance="ev-1", step=step, visit=visit,
        entered_ms=AT,
        since_ms=AT, until_ms=0, entry={"type": "customer.registered", "data": {}},
    )  # fmt: skip
    return replace(position, **changes)  # type: ignore[arg-type]  # Position's own fields


def send(trigger_id: str, **changes: object) -> Candidate:
    fields: dict[str, object] = {
        "trigger_id": trigger_id, "who": "s1:c1", "rule_id": "journey:onboarding",
        "at_ms": AT, "cooldown_ms": 0, "channel": "sms", "cap_day": 20_500, "day_cap": 1,
        "week_cap": 0, "gate_window_ms": 0, "priority": 50,
        "release_at_ms": 0, "payload": b'{"id": "' + trigger_id.encode() + b'"}',
        "why": b'{"journey": "onboarding"}',
    }  # fmt: skip
    return Candidate(**{**fields, **changes})  # type: ignore[arg-type]  # the fields above


def test_a_position_is_kept_as_it_was() -> None:
    position = at_step("wait", 3, until_ms=AT + 5, matched={"first-order": AT + 2})
    assert decode_position(encode_position(position)) == position


async def test_an_entry_a_send_and_an_exit_each_move_once(
    store: JourneyStore, settings: Settings, client: RedisClient
) -> None:
    keys = Keys(settings.redis.key_prefix)
    welcome = at_step("welcome", 1)
    enter = store.call("s1", "c1", None, welcome, at_ms=AT, counted=["entered", "sent:welcome"],
                       send=send("j-1"))  # fmt: skip
    # The same entry worked out twice (a redelivery): the second finds the instance there.
    first, again = await store.run([enter, enter])
    assert first == JourneyMoved(moved=True, decision=Decision.SENT, stored=None)
    assert not again.moved
    assert again.stored is not None
    held = await store.read("s1", "c1")
    assert held.entries == {"onboarding": Entries(1, AT)}
    (instance,) = held.instances.values()
    assert instance.position == welcome
    assert instance.decision == Decision.SENT  # kept, for a worker that died before the reply

    # The next send of the same customer on the same local day meets the cap of 1.
    coupon = at_step("coupon", 2, since_ms=AT + 1)
    (capped,) = await store.run(
        [store.call("s1", "c1", welcome, coupon, at_ms=AT + 1, send=send("j-2", at_ms=AT + 1))]
    )
    assert capped.decision == Decision.CAPPED
    assert (await store.read("s1", "c1")).instances[("onboarding", "")].decision == "capped"

    # A stale move (from visit 1 again) is refused; the exit from visit 2 goes through.
    stale = store.call("s1", "c1", welcome, None, at_ms=AT + 2)
    leave = store.call("s1", "c1", coupon, None, at_ms=AT + 2, counted=["exit:finished"],
                       why=b'{"journey": "onboarding", "reason": "finished"}')  # fmt: skip
    refused, left = await store.run([stale, leave])
    assert not refused.moved
    assert left == JourneyMoved(moved=True, decision=None, stored=None)
    after = await store.read("s1", "c1")
    assert after.instances == {}
    assert after.entries == {"onboarding": Entries(1, AT)}  # what re-entry reads stays

    outbox = await client.xrange(keys.outbox(keys.trigger_shard("s1", "c1"))) or []
    assert [fields[b"id"] for _, fields in outbox if fields is not None] == [b"j-1"]
    log = await DecisionReader(client, keys).log("s1", "c1")
    assert [entry["outcome"] for entry in log] == ["journey", "capped", "sent"]
    assert log[0]["reason"] == "finished"
    # The instance is gone, but its entry event cannot make it again.
    (again,) = await store.run([enter])
    assert not again.moved
    assert (await store.read("s1", "c1")).instances == {}
    fired = await DecisionReader(client, keys).fired("s1", "c1")
    assert [entry["trigger_id"] for entry in fired] == ["j-1", "j-2"]  # no journey marks
    stats = await client.hgetall(keys.journey_stats(keys.trigger_shard("s1", "c1"))) or {}
    counted = {text(name).split("\x1f", 3)[3]: int(v) for name, v in stats.items()}
    assert counted == {"entered": 1, "sent:welcome": 1, "exit:finished": 1}
