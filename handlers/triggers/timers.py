"""Due absence timers become triggers; held triggers leave quiet hours.

Any worker may run these, as often as it likes: a due timer is leased to one
caller at a time (lua/triggers.lua: due), and its trigger is emitted with the
removal of the timer in one call, under an id fixed by what armed it, so two
workers racing on it produce one trigger.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any, Final

from handlers.profile.read import Profile, build_profile
from handlers.scripts import DUE, RELEASE
from handlers.triggers import decide
from handlers.triggers.decide import Candidate
from handlers.triggers.members import PUT_OFF, parse_member, read_timer_value
from handlers.triggers.stage import SUFFIXES, ShardWork, TriggerStage, absence_reason
from rules.activation import activation, event_view, profile_view
from rules.loader import CompiledRule
from schemas.decode import Decoder
from schemas.events import Envelope
from schemas.triggers import MatchedCondition

log = logging.getLogger("crmstream.timers")

_NO_LIMIT: Final = datetime.max.replace(tzinfo=UTC)


def _skip(shop: str, customer: str, rule_id: str, member: str) -> Candidate:
    """Clears a timer that must not fire (rule gone, customer forgotten)."""
    return Candidate(
        trigger_id="", who=f"{shop}:{customer}", rule_id=rule_id, at_ms=0, cooldown_ms=0,
        channel="", cap_day="", cap=0, release_at_ms=0, payload=b"", timer=member,
    )  # fmt: skip


class TimerPump:
    def __init__(
        self, stage: TriggerStage, *, lease_ms: int, limit: int, worker: str, stale_ms: int
    ) -> None:
        self._stage = stage
        self._lease_ms = lease_ms
        self._limit = limit
        self._worker = worker
        self._stale_ms = stale_ms
        self._decoder = Decoder()

    async def agreed_now(self) -> int:
        """Event time every live worker has reached: a timer may concern a customer another
        worker reads, so none fires before all of them are past its deadline."""
        stage = self._stage
        mine, wall = stage.clock.now_ms(), int(time.time() * 1000)
        pipe = stage.client.pipeline(transaction=False)
        pipe.hset(stage.keys.clocks, self._worker, f"{mine}:{wall}")
        pipe.hgetall(stage.keys.clocks)
        _, clocks = await pipe.execute()
        agreed, gone = mine, []
        for worker, value in clocks.items():
            event_ms, _, seen_ms = value.decode().partition(":")
            if wall - int(seen_ms) > self._stale_ms:
                gone.append(worker)  # a worker that stopped reporting has left the group
            else:
                agreed = min(agreed, int(event_ms))
        if gone:
            await stage.client.hdel(stage.keys.clocks, *gone)
        return agreed

    async def leave(self) -> None:
        """This worker stops: its clock no longer holds the others' time back."""
        await self._stage.client.hdel(self._stage.keys.clocks, self._worker)

    async def fire_due(self) -> Counter[str]:
        """Every timer due by event time (or the clock, when the stream is quiet)."""
        stage = self._stage
        now_ms = await self.agreed_now()
        pipe = stage.client.pipeline(transaction=False)
        bases = stage.keys.trigger_shards()
        for base in bases:
            pipe.fcall(DUE, 1, base, SUFFIXES, now_ms, self._lease_ms, self._limit)
        due: list[tuple[str, str, int, dict[str, Any]]] = []
        drained = True
        for base, reply in zip(bases, await pipe.execute(), strict=True):
            drained = drained and len(reply) < 2 * self._limit
            for position in range(0, len(reply), 2):
                member = reply[position].decode()
                if reply[position + 1]:
                    deadline, armed = read_timer_value(reply[position + 1])
                    due.append((base, member, deadline, armed))
        if drained and not stage.clock.behind:
            stage.deferring = False  # caught up, and what was put off is decided
        if not due:
            return Counter()
        members = [parse_member(member) for _, member, _, _ in due]
        stored = await stage.reader.read_stored([(shop, who) for _, _, shop, who in members])
        work: dict[str, ShardWork] = {}
        outcomes: Counter[str] = Counter()
        for (base, member, deadline, armed), (kind, rule_id, shop, customer) in zip(
            due, members, strict=True
        ):
            shard = work.setdefault(base, ShardWork())
            state = stored.get((shop, customer))
            profile = (
                None
                if state is None
                else build_profile(shop, customer, deadline, state, stage.reader.config_of(shop))
            )
            candidate: Candidate | None
            if profile is None:
                candidate = None  # forgotten on request meanwhile
            elif kind == PUT_OFF:
                candidate = self._decide_later(rule_id, member, deadline, armed, profile, outcomes)
            else:
                rule = stage.rules.absence_rule(rule_id)
                candidate = (
                    None
                    if rule is None
                    else self._candidate(rule, shop, customer, member, deadline, armed, profile)
                )
            if candidate is None:
                shard.candidates.append(_skip(shop, customer, rule_id, member))
                continue
            if not candidate.channel:
                outcomes["no_consent"] += 1
            shard.candidates.append(candidate)
        outcomes.update(await stage.submit(work))
        return outcomes

    def _decide_later(  # noqa: PLR0917 -- one put-off decision, unpacked
        self,
        rule_id: str,
        member: str,
        at_ms: int,
        armed: dict[str, Any],
        profile: Profile,
        outcomes: Counter[str],
    ) -> Candidate | None:
        """An on-event rule's decision put off while the worker was behind, taken now."""
        stage = self._stage
        rule = stage.rules.event_rule(rule_id)
        event = self._decoder.decode(armed["event"].encode(), None, None, _NO_LIMIT)
        if rule is None or not isinstance(event, Envelope):
            return None
        context = activation(event_view(event), profile_view(profile), at_ms)
        return stage.event_candidate(rule, event, at_ms, profile, context, outcomes, member)

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
