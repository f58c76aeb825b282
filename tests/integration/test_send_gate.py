"""The send gate (gate.lua through crm_emit) on a real Redis: the last slot of a day or a
week goes to the higher priority decided within the shop's window, whichever came first;
with no window, first come first served and nothing held; a week counts seven local days;
service messages pass; whatever is held back says who took the slot."""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson
import pytest

from crmstream.settings import Settings
from handlers.functions import FunctionLibrary
from handlers.functions.triggers import (
    LIBRARY,
    Candidate,
    Decision,
    Emit,
    Release,
    Released,
)
from handlers.keys import TRIGGER_KEYS, Keys
from handlers.redis_client import RedisClient, connect
from handlers.triggers.decisions import DecisionReader
from tests.support import text

KEEP_MS = 86_400_000
DAY = 20_500  # the customer's local day, as days since 1970
WINDOW_MS = 30_000
NOW = 1_000_000


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[RedisClient]:
    redis = connect(settings.redis)
    yield redis
    await redis.aclose()


def send(trigger_id: str, rule: str, priority: int, **changes: object) -> Candidate:
    fields: dict[str, object] = {
        "trigger_id": trigger_id, "who": "s1:c1", "rule_id": rule, "at_ms": NOW,
        "cooldown_ms": 0, "channel": "sms", "cap_day": DAY, "day_cap": 1, "week_cap": 0,
        "gate_window_ms": WINDOW_MS, "priority": priority, "release_at_ms": 0,
        "payload": b'{"id": "' + trigger_id.encode() + b'"}', "goal_key": "order",
        "goal_window_ms": 10_000, "why": orjson.dumps({"rule": rule, "trigger_id": trigger_id}),
    }  # fmt: skip
    return Candidate(**{**fields, **changes})  # type: ignore[arg-type]  # the fields above


class Gate:
    def __init__(self, settings: Settings, client: RedisClient) -> None:
        self.keys = Keys(settings.redis.key_prefix)
        self.shard = self.keys.trigger_shard("s1", "c1")
        self.client = client
        self.library = FunctionLibrary(client, LIBRARY, "triggers")

    async def emit(self, now_ms: int, *candidates: Candidate) -> list[Decision]:
        (reply,) = await self.library.run([Emit(self.shard, KEEP_MS, now_ms, 50, candidates)])
        return list(reply.decisions)

    async def release(self, now_ms: int) -> int:
        (reply,) = await self.library.run(
            [Release(self.shard, now_ms, limit=10, log_size=50, fired_window_ms=KEEP_MS)]
        )
        assert isinstance(reply, Released)
        return reply.released

    async def sent(self) -> list[str]:
        entries = await self.client.xrange(self.keys.outbox(self.shard)) or []
        return [orjson.loads(fields[b"event"])["id"] for _, fields in entries if fields]

    async def log(self) -> list[dict[str, object]]:
        return list(reversed(await DecisionReader(self.client, self.keys).log("s1", "c1")))

    async def stats(self, rule: str) -> dict[str, int]:
        stats = await self.client.hgetall(self.shard + TRIGGER_KEYS.stats)
        prefix = f"s1\x1f{rule}\x1f"
        return {
            text(name)[len(prefix) :]: int(value)
            for name, value in stats.items()
            if text(name).startswith(prefix) and int(value)
        }


@pytest.fixture
def gate(settings: Settings, client: RedisClient) -> Gate:
    return Gate(settings, client)


async def test_a_higher_priority_decided_within_the_window_takes_the_last_slot(
    gate: Gate,
) -> None:
    # The lower priority comes first, takes the day's only SMS and waits out the window.
    assert await gate.emit(NOW, send("low", "birthday", 20)) == [Decision.HELD]
    assert await gate.sent() == []
    # The higher, decided within it, takes the slot; it waits out a window of its own.
    assert await gate.emit(NOW + 10_000, send("high", "vip-upgrade", 80)) == [Decision.HELD]
    assert await gate.release(NOW + 10_000 + WINDOW_MS) == 1
    assert await gate.sent() == ["high"]
    capped = [entry for entry in await gate.log() if entry["outcome"] == "capped"]
    assert capped == [
        {**capped[0], "rule": "birthday", "trigger_id": "low",
         "capped_by": {"rule": "vip-upgrade", "priority": 80, "span": "day"}},
    ]  # fmt: skip
    # Counted as what became of it; a redelivery of either decides nothing again.
    assert await gate.stats("birthday") == {"capped": 1}
    assert await gate.stats("vip-upgrade") == {"held": 1}
    again = (send("low", "birthday", 20), send("high", "vip-upgrade", 80))
    assert await gate.emit(NOW + 50_000, *again) == [Decision.DUPLICATE, Decision.DUPLICATE]
    # The day is spent: a third, of any priority, is capped, naming who took the slot.
    assert await gate.emit(NOW + 60_000, send("third", "survey", 99)) == [Decision.CAPPED]
    third = (await gate.log())[-1]
    assert third["capped_by"] == {"rule": "vip-upgrade", "priority": 80, "span": "day"}


async def test_the_higher_priority_first_keeps_its_slot(gate: Gate) -> None:
    assert await gate.emit(NOW, send("high", "vip-upgrade", 80)) == [Decision.HELD]
    assert await gate.emit(NOW + 1_000, send("low", "birthday", 20)) == [Decision.CAPPED]
    assert await gate.release(NOW + WINDOW_MS) == 1
    assert await gate.sent() == ["high"]
    assert (await gate.log())[-2]["capped_by"] == {
        "rule": "vip-upgrade", "priority": 80, "span": "day",
    }  # fmt: skip


async def test_after_the_window_the_slot_is_kept_by_whoever_took_it(gate: Gate) -> None:
    assert await gate.emit(NOW, send("low", "birthday", 20)) == [Decision.HELD]
    assert await gate.emit(NOW + WINDOW_MS, send("high", "vip-upgrade", 80)) == [Decision.CAPPED]
    assert await gate.release(NOW + WINDOW_MS) == 1
    assert await gate.sent() == ["low"]


async def test_with_no_window_nothing_waits_and_the_first_decided_goes(gate: Gate) -> None:
    day = {"gate_window_ms": 0, "day_cap": 2}
    assert await gate.emit(
        NOW, send("a", "birthday", 20, **day), send("b", "birthday-2", 20, **day)
    ) == [Decision.SENT, Decision.SENT]  # fmt: skip
    assert await gate.emit(NOW + 1, send("c", "vip-upgrade", 80, **day)) == [Decision.CAPPED]
    assert await gate.sent() == ["a", "b"]


async def test_only_the_last_slot_waits(gate: Gate) -> None:
    three = {"day_cap": 3}
    decided = await gate.emit(
        NOW, *(send(f"t{n}", f"rule-{n}", 50, **three) for n in range(4))
    )  # fmt: skip
    assert decided == [Decision.SENT, Decision.SENT, Decision.HELD, Decision.CAPPED]


async def test_a_week_is_seven_local_days(gate: Gate) -> None:
    week = {"gate_window_ms": 0, "day_cap": 1, "week_cap": 3}

    async def on(day: int, name: str) -> Decision:
        (decision,) = await gate.emit(NOW, send(name, f"rule-{name}", 50, cap_day=day, **week))
        return decision

    assert [await on(DAY + n, f"d{n}") for n in range(3)] == [Decision.SENT] * 3
    assert await on(DAY + 3, "d3") == Decision.CAPPED
    took = {"rule": "rule-d2", "priority": 50, "span": "week"}
    assert (await gate.log())[-1]["capped_by"] == took
    assert await on(DAY + 6, "d6") == Decision.CAPPED
    # Day DAY falls out of the seven: a slot is free again.
    assert await on(DAY + 7, "d7") == Decision.SENT


async def test_a_held_send_given_up_undoes_its_cooldown_and_goal(
    gate: Gate, client: RedisClient
) -> None:
    cooled = {"cooldown_ms": 3_600_000}
    assert await gate.emit(NOW, send("low", "birthday", 20, **cooled)) == [Decision.HELD]
    assert await gate.emit(NOW + 1, send("high", "vip-upgrade", 80)) == [Decision.HELD]
    cooldowns = await client.hgetall(gate.shard + TRIGGER_KEYS.cooldowns + "s1:c1")
    assert b"birthday" not in cooldowns
    open_goals = await client.zrange(gate.shard + TRIGGER_KEYS.open_goals + "s1:c1", 0, -1)
    rules = [
        text(member).split("\x1f")[0]
        for member in open_goals
        if not isinstance(member, tuple | list)
    ]
    assert rules == ["vip-upgrade"]
    # The same rule, on another day, is not cooled down by a send that never went.
    other_day = send("low-2", "birthday", 20, cap_day=DAY + 1, gate_window_ms=0, **cooled)
    assert await gate.emit(NOW + 2, other_day) == [Decision.SENT]


async def test_service_messages_pass_the_caps(gate: Gate) -> None:
    assert await gate.emit(NOW, send("m", "birthday", 20, gate_window_ms=0)) == [Decision.SENT]
    service = send("s", "bad-review", 10, cap_day=0, day_cap=0)
    assert await gate.emit(NOW, service) == [Decision.SENT]
