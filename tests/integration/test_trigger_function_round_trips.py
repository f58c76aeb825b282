"""The trigger library's calls make the round trip on a real Redis: the guards, a hold and
its release, a conversion, the phone index and an erasure, read back by name."""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson
import pytest

from crmstream.settings import Settings
from handlers.functions import FunctionLibrary
from handlers.functions.triggers import (
    LIBRARY,
    Candidate,
    Converted,
    Decision,
    Emit,
    EmitReply,
    Erase,
    GoalEvent,
    Goals,
    Indexed,
    IndexPhones,
    Phone,
    Release,
    Released,
    ScheduleIndex,
    Withdrawn,
)
from handlers.keys import RELAY_GROUP, Keys
from handlers.redis_client import RedisClient, connect
from handlers.triggers.decisions import DecisionReader

WINDOW_MS = 86_400_000
WHO = "s1:c1"
DAY = 20_500  # a local day, as days since 1970


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[RedisClient]:
    redis = connect(settings.redis)
    yield redis
    await redis.aclose()


def candidate(trigger_id: str, **changes: object) -> Candidate:
    fields: dict[str, object] = {
        "trigger_id": trigger_id, "who": WHO, "rule_id": "welcome", "at_ms": 1_000,
        "cooldown_ms": 0, "channel": "sms", "cap_day": 0, "day_cap": 0, "week_cap": 0,
        "gate_window_ms": 0, "priority": 50,
        "release_at_ms": 0, "payload": b'{"id": "' + trigger_id.encode() + b'"}',
        "goal_key": "order", "goal_window_ms": 10_000, "why": b'{"trigger_id": "x"}',
    }  # fmt: skip
    return Candidate(**{**fields, **changes})  # type: ignore[arg-type]  # the fields above


async def test_emit_release_and_goals(settings: Settings, client: RedisClient) -> None:
    keys = Keys(settings.redis.key_prefix)
    shard = keys.trigger_shard("s1", "c1")
    library = FunctionLibrary(client, LIBRARY, "triggers")
    emit = Emit(shard, WINDOW_MS, now_ms=2_000, log_size=50, candidates=[
        candidate("t1"),
        candidate("t1"),  # the same occurrence again
        candidate("t2", channel=""),  # no consent
        candidate("t3", rule_id="survey", release_at_ms=5_000),  # quiet hours
        candidate("t4", rule_id="late", expires_at_ms=1_500),
        candidate("t5", rule_id="capped", cap_day=DAY, day_cap=1, channel="push"),
        candidate("t6", rule_id="capped-too", cap_day=DAY, day_cap=1, channel="push"),
    ])  # fmt: skip
    (reply,) = await library.run([emit])
    assert reply == EmitReply([
        Decision.SENT, Decision.DUPLICATE, Decision.SKIPPED, Decision.HELD, Decision.EXPIRED,
        Decision.SENT, Decision.CAPPED,
    ])  # fmt: skip
    log = await DecisionReader(client, keys).log("s1", "c1")
    assert [entry["outcome"] for entry in reversed(log)] == [
        "sent", "consent", "held", "expired", "sent", "capped",
    ]  # fmt: skip
    release = Release(shard, now_ms=5_000, limit=10, log_size=50, fired_window_ms=WINDOW_MS)
    assert await library.run([release, release]) == [Released(1), Released(0)]
    entries = await client.xrange(keys.outbox(shard)) or []
    sent = [orjson.loads(fields[b"event"]) for _, fields in entries if fields is not None]
    assert [trigger["id"] for trigger in sent] == ["t1", "t5", "t3"]
    goal = GoalEvent(WHO, "order", at_ms=3_000, event_id="o1")
    # Each sent trigger of the order goal converts once; the goal event again changes nothing.
    assert await library.run([Goals(shard, 10_000, [goal]), Goals(shard, 10_000, [goal])]) == [
        Converted(3), Converted(0),
    ]  # fmt: skip


async def test_phones_and_erasure(settings: Settings, client: RedisClient) -> None:
    keys = Keys(settings.redis.key_prefix)
    shard = keys.trigger_shard("s1", "c1")
    library = FunctionLibrary(client, LIBRARY, "triggers")
    assert await library.run([IndexPhones(shard, [Phone(WHO, "h1"), Phone(WHO, "h2")])]) == [
        Indexed(2)
    ]
    assert await client.hget(keys.phones(shard), "s1\x1fh2") == b"c1"
    assert await client.hget(keys.phones(shard), "s1\x1fh1") is None  # the number changed
    held = candidate("t1", release_at_ms=9_000)
    await library.run([Emit(shard, WINDOW_MS, 2_000, 50, [held, candidate("t2")])])
    birthdays = keys.schedule_index(shard, "birthday", "0301")
    dormant = keys.schedule_index(shard, "dormant")
    await client.sadd(birthdays, WHO)
    await client.zadd(dormant, {WHO: 1})
    indexes = [ScheduleIndex(birthdays, is_set=True), ScheduleIndex(dormant, is_set=False)]
    erase = Erase(shard, WHO, RELAY_GROUP, indexes)
    assert await library.run([erase]) == [Withdrawn(2)]  # held, and unread in the outbox
    assert await library.run([erase]) == [Withdrawn(0)]  # safe to repeat
    assert not await client.exists(birthdays, dormant, keys.decision_log("s1", "c1"))
    assert await client.hlen(keys.phones(shard)) == 0
