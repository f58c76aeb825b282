"""Due absence timers become triggers; held triggers leave quiet hours.

Any worker may run these, as often as it likes: a due timer is leased to one
caller at a time (lua/triggers.lua: due), and its trigger is emitted with the
removal of the timer in one call, under an id fixed by what armed it, so two
workers racing on it produce one trigger.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

import orjson

from handlers.profile.read import Profile
from handlers.scripts import DUE, RELEASE
from handlers.triggers import decide
from handlers.triggers.decide import Candidate
from handlers.triggers.stage import SUFFIXES, ShardWork, TriggerStage, absence_reason
from rules.loader import CompiledRule
from schemas.triggers import MatchedCondition

log = logging.getLogger("crmstream.timers")


def _skip(shop: str, customer: str, rule_id: str, member: str) -> Candidate:
    """Clears a timer that must not fire (rule gone, customer forgotten)."""
    return Candidate(
        trigger_id="", who=f"{shop}:{customer}", rule_id=rule_id, at_ms=0, cooldown_ms=0,
        channel="", cap_day="", cap=0, release_at_ms=0, payload=b"", timer=member,
    )  # fmt: skip


class TimerPump:
    def __init__(self, stage: TriggerStage, *, lease_ms: int, limit: int) -> None:
        self._stage = stage
        self._lease_ms = lease_ms
        self._limit = limit

    async def fire_due(self) -> Counter[str]:
        """Every timer due by event time (or the clock, when the stream is quiet)."""
        stage = self._stage
        now_ms = stage.clock.now_ms()
        pipe = stage.client.pipeline(transaction=False)
        bases = stage.keys.trigger_shards()
        for base in bases:
            pipe.fcall(DUE, 1, base, SUFFIXES, now_ms, self._lease_ms, self._limit)
        due: list[tuple[str, str, int, dict[str, Any]]] = []
        for base, reply in zip(bases, await pipe.execute(), strict=True):
            for position in range(0, len(reply), 3):
                member = reply[position].decode()
                armed = orjson.loads(reply[position + 2]) if reply[position + 2] else {}
                due.append((base, member, int(float(reply[position + 1])), armed))
        if not due:
            return Counter()
        customers = []
        for _, member, _, _ in due:
            _, shop, customer = member.split("\x1f", 2)
            customers.append((shop, customer))
        profiles = await stage.reader.read_many(customers, as_of_ms=now_ms)
        work: dict[str, ShardWork] = {}
        outcomes: Counter[str] = Counter()
        for base, member, deadline, armed in due:
            rule_id, shop, customer = member.split("\x1f", 2)
            shard = work.setdefault(base, ShardWork([], [], []))
            rule = stage.rules.get(rule_id)
            profile = profiles.get((shop, customer))
            if (
                rule is None
                or not rule.rule.enabled
                or rule.rule.kind != "absence"
                or profile is None
            ):
                shard.candidates.append(_skip(shop, customer, rule_id, member))
                outcomes["dropped"] += 1
                continue
            candidate = self._candidate(rule, shop, customer, member, deadline, armed, profile)
            if not candidate.channel:
                outcomes["no_consent"] += 1
            shard.candidates.append(candidate)
        outcomes.update(await stage.submit(work))
        return outcomes

    def _candidate(  # noqa: PLR0917 -- one due timer, unpacked
        self,
        rule: CompiledRule,
        shop: str,
        customer: str,
        member: str,
        deadline: int,
        armed: dict[str, Any],
        profile: Profile,
    ) -> Candidate:
        armed_by = str(armed.get("armed_by", ""))
        reason = [absence_reason(rule, armed, deadline)]
        if rule.rule.condition != "true":
            reason.insert(
                0,
                MatchedCondition(condition=rule.condition.text, values=armed.get("values", {})),
            )
        cart_items = [line["item_id"] for line in profile["cart"]["items"]]
        items = list(dict.fromkeys([*armed.get("items", []), *cart_items]))
        return decide.build(
            rule,
            shop=shop,
            customer=customer,
            occurrence=armed_by,
            at_ms=deadline,
            profile=profile,
            reason=reason,
            caused_by=[armed_by] if armed_by else [],
            items=items,
            daily_cap=self._stage.settings.daily_cap,
            timer=member,
        )

    async def release_held(self, now_ms: int) -> int:
        """Held triggers whose quiet hours are over go to the outbox; returns how many."""
        stage = self._stage
        pipe = stage.client.pipeline(transaction=False)
        for base in stage.keys.trigger_shards():
            pipe.fcall(RELEASE, 1, base, SUFFIXES, now_ms, self._limit)
        return sum(int(n) for n in await pipe.execute())
