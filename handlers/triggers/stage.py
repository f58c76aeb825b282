"""The rule stage: after a batch's profiles are in, which triggers it causes.

Per batch, whatever its size, it costs two round trips: one reads the profiles
of the customers whose events some rule listens to, one runs the guards and
writes the outbox, timers and cancellations, shard by shard
(functions/emit.lua). Rules see the profile as of the end of their batch.
"""

from __future__ import annotations

import logging
import time as _time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from crmstream.logcontext import where
from crmstream.settings import TriggerSettings
from handlers.functions import FunctionLibrary
from handlers.functions.contract import Call
from handlers.functions.timers import LIBRARY as TIMER_LIBRARY
from handlers.functions.timers import Arm, PutOff
from handlers.functions.triggers import LIBRARY as TRIGGER_LIBRARY
from handlers.functions.triggers import Candidate, Emit, GoalEvent, Goals
from handlers.keys import Keys
from handlers.profile.encode import contact_free, epoch_ms
from handlers.profile.read import SECTIONS, Profile, ProfileReader, build_profile
from handlers.redis_client import RedisClient
from handlers.triggers import decide
from handlers.triggers.clock import StreamTime
from handlers.triggers.indexes import INDEXED_TYPES, IndexWork, index_updates
from handlers.triggers.members import (
    arm_op,
    cancel_op,
    deferred_member,
    timer_member,
    timer_value,
)
from handlers.triggers.reasons import log_position, on_event_reason
from handlers.triggers.work import BatchWork, ShardWork, count_decisions
from rules.activation import activation, event_view, profile_view
from rules.expressions import ALL, ConditionError
from rules.loader import CompiledRule, RuleSet
from schemas.events import Envelope

log = logging.getLogger("crmstream.triggers")

_DAY_MS = 86_400_000


def _time_of(entry: tuple[Envelope, int]) -> datetime:
    return entry[0].time


def profile_sections(rules: Iterable[CompiledRule], *extra: str) -> frozenset[str]:
    """The profile sections these rules' conditions read, with the facts (consent) and
    ``extra``: building only those is most of what a rule costs per event."""
    needed = {"facts", *extra}
    for rule in rules:
        for condition in (rule.condition, rule.occurrence):
            reads = condition.reads.get("profile", frozenset()) if condition else frozenset()
            if reads == ALL:
                return frozenset(SECTIONS)
            needed |= reads
    return frozenset(needed)


def items_of(event: Envelope) -> list[str]:
    data: Any = getattr(event, "data", None)
    if data is None:
        return []
    if hasattr(data, "items"):
        return [line.item_id for line in data.items]
    item = getattr(data, "item_id", None)
    return [item] if item else []


class TriggerStage:
    """Evaluates the rules for a batch of applied events and hands triggers to the outbox."""

    def __init__(
        self,
        client: RedisClient,
        *,
        keys: Keys,
        reader: ProfileReader,
        rules: RuleSet,
        settings: TriggerSettings,
        time: StreamTime,
        wall_ms: Callable[[], int] = lambda: int(_time.time() * 1000),
        hash_key: bytes | None = None,
    ) -> None:
        self.client = client
        self.keys = keys
        self.reader = reader
        self.rules = rules
        self.settings = settings
        self.time = time
        # When a decision is taken, for max_age: the clock live; a backtest's event time.
        self.wall_ms = wall_ms
        self._hash_key = hash_key
        self.fired_window_ms = settings.fired_window_days * _DAY_MS
        self._library = FunctionLibrary(client, (TRIGGER_LIBRARY, TIMER_LIBRARY), "trigger")

    async def run(self, calls: Sequence[Call]) -> list[Any]:
        return await self._library.run(calls)

    async def on_events(
        self, events: Sequence[Envelope], partitions: Sequence[int] | None = None
    ) -> Counter[str]:
        """Arm, cancel and emit what this batch causes; returns outcomes by name.
        ``partitions``: the partition each event was read from (all 0 if not given)."""
        rules = self.rules
        listened = rules.event_types
        where = partitions if partitions is not None else [0] * len(events)
        relevant = [
            (event, partition)
            for event, partition in zip(events, where, strict=True)
            if event.subject is not None and event.type in listened  # type: ignore[attr-defined]
        ]
        # A batch holds several topics side by side: rules take its events as they happened.
        relevant.sort(key=_time_of)
        indexed = [
            (event, partition)
            for event, partition in zip(events, where, strict=True)
            if event.type in INDEXED_TYPES  # type: ignore[attr-defined]
        ]
        outcomes: Counter[str] = Counter()
        work = BatchWork()
        self._goals(events, work.shards)
        if not relevant and not indexed and not work.shards:
            return outcomes
        # Behind on a partition, its decisions wait for its event time (timers.py).
        deferring = {p: self.time.deferring(p) for p in {p for _, p in relevant}}
        sections = profile_sections(
            rule
            for event, partition in relevant
            for rule in self._deciding(event.type, deferring[partition])  # type: ignore[attr-defined]
        )
        customers = [(e.shop, e.who) for e, _ in relevant]
        stored = await self.reader.read_stored(customers, sections) if relevant else {}
        for event, partition in relevant:
            shop, customer, kind = event.shop, event.who, event.type  # type: ignore[attr-defined]
            at_ms = epoch_ms(event.time)
            put_off = deferring[partition]
            ops = work.timer_ops[partition]
            for rule in rules.cancelling.get(kind, ()):
                member = timer_member(rule.rule.id, shop, customer)
                ops.append(cancel_op(member, at_ms, event_id=event.id))
            state = stored.get((shop, customer))
            if state is None:
                continue  # forgotten on request since: nothing to send
            deciding = self._deciding(kind, deferring[partition])
            # Windows and scores as of the event itself, whatever else its batch holds; only
            # what the rules read (and the facts, for consent), for speed.
            profile = build_profile(
                shop,
                customer,
                at_ms,
                state,
                self.reader.config_of(shop),
                sections=profile_sections(deciding),
            )
            shard = work.shards[self.keys.trigger_shard(shop, customer)]
            self._evaluate(
                event, at_ms, profile, shard=shard, ops=ops, put_off=put_off, outcomes=outcomes,
            )  # fmt: skip
        indexing = index_updates(self.keys, indexed, rules.absence_ids, self._hash_key)
        outcomes.update(await self.submit(work, indexing))
        return outcomes

    def _deciding(self, kind: str, deferring: bool) -> tuple[CompiledRule, ...]:
        """The rules an event of ``kind`` is evaluated for now: those it arms, and its
        on-event rules unless their decision is put off."""
        arming = self.rules.arming.get(kind, ())
        return arming if deferring else (*arming, *self.rules.on_event.get(kind, ()))

    def _goals(self, events: Sequence[Envelope], work: Mapping[str, ShardWork]) -> None:
        """Queue the goal events of the batch: each converts the triggers it follows."""
        goals = self.rules.goals
        for event in events:
            specs = goals.get(event.type)  # type: ignore[attr-defined]
            if not specs or event.subject is None:
                continue  # a conversion is a known customer's
            at_ms = epoch_ms(event.time)
            context: dict[str, Any] | None = None
            for spec in specs:
                if not spec.condition.always:
                    context = context or activation(event_view(event), {}, at_ms)
                    try:
                        if not spec.condition.holds(context):
                            continue
                    except ConditionError as exc:
                        at = where(event.id)
                        log.warning(
                            "goal %s on event %s at %s: %s", spec.event, event.id, at, exc,
                            extra={"event_id": event.id, **log_position(at)},
                        )  # fmt: skip
                        continue
                shard = work[self.keys.trigger_shard(event.shop, event.subject)]
                who = f"{event.shop}:{event.subject}"
                shard.goal_events.append(GoalEvent(who, spec.key, at_ms, event.id))

    def _evaluate(
        self,
        event: Envelope,
        at_ms: int,
        profile: Profile,
        *,
        shard: ShardWork,
        ops: list[PutOff],
        put_off: bool,
        outcomes: Counter[str],
    ) -> None:
        rules, kind = self.rules, event.type  # type: ignore[attr-defined]
        deciding = (*rules.arming.get(kind, ()), *rules.on_event.get(kind, ()))
        # The event as CEL sees it costs a conversion: made only for rules that read it.
        reads_event = any(
            "event" in condition.reads
            for rule in deciding
            for condition in (rule.condition, rule.occurrence)
            if condition is not None
        )
        view = event_view(event) if reads_event else None
        context = activation(view, profile_view(profile), at_ms)
        for rule in rules.on_event.get(kind, ()):
            if put_off:
                # Behind on this partition: decided once its event time has passed this
                # event (handlers/triggers/timers.py), with everything before it known.
                ops.append(self._deferred(rule, event, at_ms))
                outcomes["deferred"] += 1
                continue
            candidate = self.event_candidate(rule, event, at_ms, profile, context, outcomes)
            if candidate is not None:
                shard.candidates.append(candidate)
        for rule in rules.arming.get(kind, ()):
            if self._holds(rule, context, event, outcomes):
                ops.append(self._timer(rule, event, at_ms, context))
                outcomes["armed"] += 1

    def event_candidate(  # noqa: PLR0917 -- one rule over one event and its profile
        self,
        rule: CompiledRule,
        event: Envelope,
        at_ms: int,
        profile: Profile,
        context: Mapping[str, Any],
        outcomes: Counter[str],
    ) -> Candidate | None:
        """The trigger an on-event rule wants for this event, or None."""
        if not self._holds(rule, context, event, outcomes):
            return None
        occurrence = self._occurrence(rule, context, default=event.id)
        if occurrence is None:
            outcomes["error"] += 1
            return None
        return decide.build(
            rule,
            shop=event.shop,
            customer=event.who,
            occurrence=occurrence,
            at_ms=at_ms,
            profile=profile,
            reason=on_event_reason(rule, event, context),
            caused_by=[event.id],
            items=items_of(event),
            daily_cap=self.settings.daily_cap,
        )

    def _deferred(self, rule: CompiledRule, event: Envelope, at_ms: int) -> PutOff:
        member = deferred_member(rule.rule.id, event.shop, event.who, event.id)
        # Kept in Redis until decided: contact details only as their keyed hashes.
        kept = contact_free(event, self._hash_key)
        armed = {"version": rule.rule.version, "event": kept.model_dump_json()}
        return PutOff(member, at_ms, timer_value(at_ms, at_ms, armed))

    def _holds(
        self,
        rule: CompiledRule,
        context: Mapping[str, Any],
        event: Envelope,
        outcomes: Counter[str],
    ) -> bool:
        try:
            return rule.condition.holds(context)
        except ConditionError as exc:
            outcomes["error"] += 1
            at = where(event.id)
            log.warning(
                "rule %s on event %s at %s: %s", rule.rule.id, event.id, at, exc,
                extra={"rule": rule.rule.id, "event_id": event.id, **log_position(at)},
            )  # fmt: skip
            return False

    def _occurrence(
        self, rule: CompiledRule, context: Mapping[str, Any], default: str
    ) -> str | None:
        if rule.occurrence is None:
            return default
        try:
            return str(rule.occurrence.evaluate(context))
        except ConditionError as exc:
            log.warning("rule %s: occurrence: %s", rule.rule.id, exc)
            return None

    def _timer(
        self,
        rule: CompiledRule,
        event: Envelope,
        at_ms: int,
        context: Mapping[str, Any],
    ) -> PutOff:
        absence = rule.rule.absence
        armed = {
            "version": rule.rule.version,
            "armed_by": event.id,
            "armed_at": at_ms,
            "items": items_of(event),
            "values": rule.condition.values_read(context),
        }
        member = timer_member(rule.rule.id, event.shop, event.who)
        deadline = at_ms + absence.within_s * 1000
        value = timer_value(deadline, at_ms, armed)
        # Arms and cancels wait for the partition's event time, and meet in their order.
        return arm_op(member, value, absence.rearm, event_id=event.id)

    async def submit(self, work: BatchWork, indexing: IndexWork | None = None) -> Counter[str]:
        """One round trip: the index writes, the entries each partition puts off, then the
        candidates and goals of every shard."""
        calls: list[Call] = list(indexing.calls) if indexing is not None else []
        calls += [
            Arm(self.keys.partition(partition), ops)
            for partition, ops in work.timer_ops.items()
            if ops
        ]
        now_ms = self.wall_ms()
        emits: list[tuple[int, list[Candidate]]] = []
        for base, shard in work.shards.items():
            if shard.candidates:
                emits.append((len(calls), shard.candidates))
                calls.append(
                    Emit(base, self.fired_window_ms, now_ms, self.settings.decision_log,
                         shard.candidates)
                )  # fmt: skip
            if shard.goal_events:
                # After the emits: a trigger of this batch before its goal converts at once.
                calls.append(Goals(base, self.rules.widest_goal_ms, shard.goal_events))
        outcomes: Counter[str] = Counter()
        commands = indexing.commands if indexing is not None else []
        if not calls and not commands:
            return outcomes

        def index_writes(pipe: Any) -> None:  # noqa: ANN401 -- a redis-py pipeline
            for command in commands:
                pipe.execute_command(*command)

        replies = await self._library.run(calls, before=index_writes)
        for position, candidates in emits:
            count_decisions(candidates, replies[position].decisions, outcomes)
        return +outcomes
