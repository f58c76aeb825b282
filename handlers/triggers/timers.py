"""Due timers and put-off decisions become triggers; held triggers leave quiet hours.

Any worker may run these, as often as it likes. Each trigger shard is walked by
one worker at a time, in event-time order (lua/triggers.lua: due); a trigger is
emitted with the removal of its timer in one call, under an id fixed by what
armed it, so a walk repeated after a crash produces no second trigger.
Time is what every live worker has reached (agreed_now): a timer may concern a
customer another worker reads.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any, Final

from crmstream import metrics
from handlers.profile.read import Profile, build_profile
from handlers.scripts import DUE, RELEASE
from handlers.triggers import decide
from handlers.triggers.decide import Candidate
from handlers.triggers.members import PUT_OFF, parse_member, read_timer_value
from handlers.triggers.stage import (
    SUFFIXES,
    ShardWork,
    TriggerStage,
    absence_reason,
    profile_sections,
)
from rules.activation import activation, event_view, profile_view
from rules.loader import CompiledRule
from schemas.decode import Decoder
from schemas.events import Envelope
from schemas.triggers import MatchedCondition

log = logging.getLogger("crmstream.timers")

_NO_LIMIT: Final = datetime.max.replace(tzinfo=UTC)
# A worker keeps walking the shards it walked as long as it comes back within this long.
_HOLD_MS: Final = 5_000


def _skip(shop: str, customer: str, rule_id: str, member: str, at_ms: int) -> Candidate:
    """Clears a timer that must not fire (rule gone, customer forgotten, condition false)."""
    return Candidate(
        trigger_id="", who=f"{shop}:{customer}", rule_id=rule_id, at_ms=at_ms, cooldown_ms=0,
        channel="", cap_day="", cap=0, release_at_ms=0, payload=b"", timer=member,
    )  # fmt: skip


class TimerPump:
    def __init__(self, stage: TriggerStage, *, limit: int, worker: str, stale_ms: int) -> None:
        self._stage = stage
        self._limit = limit
        self._worker = worker
        self._stale_ms = stale_ms
        self._decoder = Decoder()
        self._walking = asyncio.Lock()

    async def agreed_now(self, *, read_up_to: bool = False) -> int:
        """Event time every live worker has reached: a timer may concern a customer another
        worker reads, so none fires before all of them are past its deadline. With
        ``read_up_to``, the time up to which all of them have read every event."""
        stage = self._stage
        clock = stage.clock
        mine = (clock.now_ms(), clock.read_up_to_ms())
        wall = int(time.time() * 1000)
        pipe = stage.client.pipeline(transaction=False)
        pipe.hset(stage.keys.clocks, self._worker, f"{mine[0]}:{mine[1]}:{wall}")
        pipe.hgetall(stage.keys.clocks)
        _, clocks = await pipe.execute()
        column = 1 if read_up_to else 0
        agreed, gone = mine[column], []
        for worker, value in clocks.items():
            due_ms, read_ms, seen_ms = value.decode().split(":")
            if wall - int(seen_ms) > self._stale_ms:
                gone.append(worker)  # a worker that stopped reporting has left the group
            else:
                agreed = min(agreed, int(read_ms if read_up_to else due_ms))
        if gone:
            await stage.client.hdel(stage.keys.clocks, *gone)
        return agreed

    async def catch_up(self) -> Counter[str]:
        """The worker has caught up: decide everything put off, in order, up to what all
        workers have read; once nothing is left put off, decisions are taken at once again."""
        outcomes: Counter[str] = Counter()
        while True:
            fired, more, later = await self._walk(read_up_to=True)
            outcomes.update(fired)
            if not more:
                break
        if later == 0:
            self._stage.deferring = False
        return outcomes

    async def leave(self) -> None:
        """This worker stops: its clock no longer holds the others' time back."""
        await self._stage.client.hdel(self._stage.keys.clocks, self._worker)

    async def fire_due(self) -> Counter[str]:
        """Every timer due by event time (or the clock, when the stream is quiet)."""
        outcomes, _more, _later = await self._walk(read_up_to=False)
        return outcomes

    async def _walk(self, *, read_up_to: bool) -> tuple[Counter[str], bool, int]:
        """One walk of every shard: outcomes, whether a limit cut it short, entries put off
        still waiting. Walks of this worker take turns: each emits in event-time order."""
        async with self._walking:
            return await self._walk_once(read_up_to=read_up_to)

    async def _walk_once(self, *, read_up_to: bool) -> tuple[Counter[str], bool, int]:
        stage = self._stage
        now_ms = await self.agreed_now(read_up_to=read_up_to)
        pipe = stage.client.pipeline(transaction=False)
        bases = stage.keys.trigger_shards()
        for base in bases:
            pipe.fcall(DUE, 1, base, SUFFIXES, now_ms, self._limit, self._worker, _HOLD_MS)
        due: list[tuple[str, str, int, dict[str, Any]]] = []
        more, later = False, 0
        for base, reply in zip(bases, await stage.execute(pipe), strict=True):
            *entries, cut, waiting = reply
            more = more or bool(int(cut))
            later += int(waiting)
            for position in range(0, len(entries), 2):
                member = entries[position].decode()
                if entries[position + 1]:
                    deadline, armed = read_timer_value(entries[position + 1])
                    due.append((base, member, deadline, armed))
        if not due:
            return Counter(), more, later
        members = [parse_member(member) for _, member, _, _ in due]
        rules = [
            rule
            for kind, rule_id, _, _ in members
            if (rule := stage.rules.get(rule_id)) is not None
        ]
        customers = [(shop, who) for _, _, shop, who in members]
        stored = await stage.reader.read_stored(customers, profile_sections(rules, "cart"))
        work: dict[str, ShardWork] = {}
        outcomes: Counter[str] = Counter()
        for (base, member, deadline, armed), (kind, rule_id, shop, customer) in zip(
            due, members, strict=True
        ):
            shard = work.setdefault(base, ShardWork())
            state = stored.get((shop, customer))
            rule_of = stage.rules.event_rule if kind == PUT_OFF else stage.rules.absence_rule
            rule = rule_of(rule_id)
            profile = (
                None
                if state is None or rule is None
                else build_profile(
                    shop,
                    customer,
                    deadline,
                    state,
                    stage.reader.config_of(shop),
                    sections=profile_sections([rule], "cart"),
                )
            )
            candidate: Candidate | None
            if rule is None or profile is None:
                candidate = None  # the rule is gone, or the customer forgotten on request
            elif kind == PUT_OFF:
                candidate = self._decide_later(rule, member, deadline, armed, profile, outcomes)
            else:
                candidate = self._candidate(rule, shop, customer, member, deadline, armed, profile)
                # Event time and the wall clock agree once caught up; a replay's deadlines are
                # old on the wall clock, which is what this measures in them.
                metrics.TIMER_DELAY.observe(max(0.0, time.time() - deadline / 1000))
            if candidate is None:
                shard.candidates.append(_skip(shop, customer, rule_id, member, deadline))
                continue
            if not candidate.channel:
                outcomes["no_consent"] += 1
            shard.candidates.append(candidate)
        outcomes.update(await stage.submit(work))
        return outcomes, more, later

    def _decide_later(  # noqa: PLR0917 -- one put-off decision, unpacked
        self,
        rule: CompiledRule,
        member: str,
        at_ms: int,
        armed: dict[str, Any],
        profile: Profile,
        outcomes: Counter[str],
    ) -> Candidate | None:
        """An on-event rule's decision put off while the worker was behind, taken now."""
        event = self._decoder.decode(armed["event"].encode(), None, None, _NO_LIMIT)
        if not isinstance(event, Envelope):
            return None
        context = activation(event_view(event), profile_view(profile), at_ms)
        return self._stage.event_candidate(rule, event, at_ms, profile, context, outcomes, member)

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
        return sum(int(n) for n in await stage.execute(pipe))
