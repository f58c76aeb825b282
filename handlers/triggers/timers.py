"""Due timers and put-off decisions become triggers; held triggers leave quiet hours.

A partition's timers and put-off decisions are walked by the worker that owns
the partition, in event-time order (functions/timers.lua: due), up to the partition's
own event time (handlers/triggers/clock.py): no other worker's progress matters.
A trigger is emitted under an id fixed by what armed it, and only then is its
entry removed (functions/timers.lua: done), so a walk repeated after a crash produces
no second trigger. A rebalance waits for the walk in flight before it hands the
partition over (``let_go``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from typing import Any, Final

from crmstream import metrics
from handlers.functions.timers import Decided, Done, Due, DueReply, Fence, LetGo
from handlers.functions.triggers import Candidate, Release, Released
from handlers.profile.read import Profile, build_profile
from handlers.triggers import decide
from handlers.triggers.clock import StreamTime
from handlers.triggers.members import PUT_OFF, parse_member, read_timer_value
from handlers.triggers.reasons import absence_reason
from handlers.triggers.stage import TriggerStage, profile_sections
from handlers.triggers.work import BatchWork
from rules.activation import activation, event_view, profile_view
from rules.loader import CompiledRule
from schemas.decode import Decoder
from schemas.events import Envelope
from schemas.triggers import MatchedCondition

log = logging.getLogger("crmstream.timers")

_NO_LIMIT: Final = datetime.max.replace(tzinfo=UTC)
# A partition's walker keeps it while it comes back within this long; it lets go at once
# when a rebalance takes the partition, so this only keeps out a worker that lost it
# without knowing (paused past its session, say).
_HOLD_MS: Final = 5_000
# A tick walks again the partitions whose walk its limit cut short, this many times at most,
# so that arms and cancels keep pace with a busy partition and other chores still get a turn.
_ROUNDS: Final = 20

DueTimer = tuple[str, int, dict[str, Any]]  # member, deadline (or event time), what armed it


class TimerPump:
    def __init__(
        self,
        stage: TriggerStage,
        time: StreamTime,
        *,
        limit: int,
        worker: str,
        fence: Callable[[int], list[Fence]] = lambda _partition: [],
        settle: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._stage = stage
        self._time = time
        self._limit = limit
        self._worker = worker
        # Per partition, the offsets its state was last recorded at (handlers/offsets.py):
        # a walk decides nothing on a Redis that lost writes since.
        self._fence = fence
        # Waits until replicas hold the walk's triggers, before its timers are struck off.
        self._settle = settle
        self._decoder = Decoder()
        # Walks of this worker take turns (each emits in event-time order), and a rebalance
        # waits for the one in flight before the partition changes hands.
        self._walking = asyncio.Lock()

    async def fire_due(self) -> Counter[str]:
        """Every arm, cancel, timer and put-off decision due by its partition's event time,
        for every partition this worker owns (one walk of them all, and again of those
        that the walk's limit cut short)."""
        outcomes: Counter[str] = Counter()
        wanted: list[int] | None = None  # every partition owned, then those cut short
        for _ in range(_ROUNDS):
            fired, waiting = await self._walk(wanted, read_up_to=False)
            outcomes.update(fired)
            wanted = [p for p, (cut, _later) in waiting.items() if cut]
            if not wanted:
                break
        return outcomes

    async def catch_up(self, partitions: Iterable[int]) -> Counter[str]:
        """These partitions have caught up: decide everything put off, in order, up to what
        has been read; once nothing is left put off for one, its decisions are taken at
        once again."""
        outcomes: Counter[str] = Counter()
        wanted = list(partitions)
        while wanted:
            fired, waiting = await self._walk(wanted, read_up_to=True)
            outcomes.update(fired)
            for partition, (cut, later) in waiting.items():
                if not cut and later == 0:
                    self._time.settled(partition)
            wanted = [p for p, (cut, _later) in waiting.items() if cut]
        return outcomes

    async def let_go(self, partitions: Iterable[int]) -> None:
        """A rebalance takes these partitions: no walk of theirs is in flight once this
        returns, none starts after, and their next owner need not wait for the hold."""
        taken = list(partitions)
        async with self._walking:
            self._time.revoke(taken)
            if not taken:
                return
            stage = self._stage
            await stage.run([LetGo(stage.keys.partition(p), self._worker) for p in taken])

    async def _walk(
        self, partitions: list[int] | None, *, read_up_to: bool
    ) -> tuple[Counter[str], dict[int, tuple[bool, int]]]:
        """One walk of ``partitions`` (None: every one this worker owns), in one round trip:
        outcomes, and per partition whether the limit cut its walk short and how many
        entries put off still wait."""
        async with self._walking:
            time_ = self._time
            owned = [
                p for p in (time_.partitions if partitions is None else partitions) if time_.owns(p)
            ]  # a rebalance may have taken some while this waited
            if not owned:
                return Counter(), {}
            stage = self._stage
            walks = [
                Due(
                    stage.keys.partition(partition),
                    now_ms=time_.read_up_to_ms(partition)
                    if read_up_to
                    else time_.due_ms(partition),
                    limit=self._limit,
                    worker=self._worker,
                    hold_ms=_HOLD_MS,
                    fence=self._fence(partition),
                )
                for partition in owned
            ]
            due: dict[int, list[DueTimer]] = {}
            waiting: dict[int, tuple[bool, int]] = {}
            outcomes: Counter[str] = Counter()
            replies: list[DueReply] = await stage.run(walks)
            for partition, reply in zip(owned, replies, strict=True):
                if reply.cancelled:
                    outcomes["cancelled"] += reply.cancelled
                if reply.state_lost:
                    # Read again from where Redis stands (the consumer finds it so before its
                    # next batch): until then, nothing of this partition's is decided.
                    log.warning("partition %d: its state lost writes; no timer walked", partition)
                    waiting[partition] = (False, reply.waiting)
                    continue
                waiting[partition] = (reply.cut_short, reply.waiting)
                for entry in reply.entries:
                    if entry.value:
                        deadline, armed = read_timer_value(entry.value)
                        due.setdefault(partition, []).append((entry.member, deadline, armed))
            if not due:
                return +outcomes, waiting
            outcomes.update(
                await self._decide([entry for entries in due.values() for entry in entries])
            )
            # Only once their triggers are in the outbox (or refused), and on a replica,
            # do the entries go.
            if self._settle is not None:
                await self._settle()
            await stage.run(
                [
                    Done(
                        stage.keys.partition(partition),
                        [Decided(member, deadline) for member, deadline, _ in entries],
                    )
                    for partition, entries in due.items()
                ]
            )
            return outcomes, waiting

    async def _decide(self, due: list[DueTimer]) -> Counter[str]:
        stage = self._stage
        members = [parse_member(member) for member, _, _ in due]
        rules = [rule for _, rule_id, _, _ in members if (rule := stage.rules.get(rule_id))]
        customers = [(shop, who) for _, _, shop, who in members]
        stored = await stage.reader.read_stored(customers, profile_sections(rules, "cart"))
        work = BatchWork()
        outcomes: Counter[str] = Counter()
        for (_member, deadline, armed), (kind, rule_id, shop, customer) in zip(
            due, members, strict=True
        ):
            state = stored.get((shop, customer))
            rule_of = stage.rules.event_rule if kind == PUT_OFF else stage.rules.absence_rule
            rule = rule_of(rule_id)
            if rule is None or state is None:
                continue  # the rule is gone, or the customer forgotten on request
            profile = build_profile(
                shop,
                customer,
                deadline,
                state,
                stage.reader.config_of(shop),
                sections=profile_sections([rule], "cart"),
            )
            candidate: Candidate | None
            if kind == PUT_OFF:
                candidate = self._decide_later(rule, deadline, armed, profile, outcomes)
            else:
                candidate = self._candidate(rule, shop, customer, deadline, armed, profile)
                # Event time and the wall clock agree once caught up; a replay's deadlines are
                # old on the wall clock, which is what this measures in them.
                metrics.TIMER_DELAY.observe(max(0.0, time.time() - deadline / 1000))
            if candidate is not None:
                work.shards[stage.keys.trigger_shard(shop, customer)].candidates.append(candidate)
        outcomes.update(await stage.submit(work))
        return outcomes

    def _decide_later(
        self,
        rule: CompiledRule,
        at_ms: int,
        armed: dict[str, Any],
        profile: Profile,
        outcomes: Counter[str],
    ) -> Candidate | None:
        """An on-event rule's decision put off while the partition was behind, taken now."""
        event = self._decoder.decode(armed["event"].encode(), None, None, _NO_LIMIT)
        if not isinstance(event, Envelope):
            return None
        context = activation(event_view(event), profile_view(profile), at_ms)
        return self._stage.event_candidate(rule, event, at_ms, profile, context, outcomes)

    def _candidate(  # noqa: PLR0917 -- one due timer, unpacked
        self,
        rule: CompiledRule,
        shop: str,
        customer: str,
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
        )

    async def release_held(self, now_ms: int) -> int:
        """Held triggers whose quiet hours are over go to the outbox; returns how many."""
        stage = self._stage
        settings = stage.settings
        releases = [
            Release(base, now_ms, self._limit, settings.decision_log, stage.fired_window_ms)
            for base in stage.keys.trigger_shards()
        ]
        replies: list[Released] = await stage.run(releases)
        return sum(reply.released for reply in replies)
