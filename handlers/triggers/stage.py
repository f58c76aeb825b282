"""The rule stage: from a batch's events and the profiles they read, which triggers the
batch causes, which timers it arms and cancels, and which decisions wait for their
partition's time. Pure: what it works out is written by handlers/triggers/batch.py.
Rules see the profile as of each event's own moment.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from crmstream import metrics
from crmstream.logcontext import where
from crmstream.settings import TriggerSettings
from handlers.functions.timers import PutOff
from handlers.functions.triggers import Candidate
from handlers.keys import Keys
from handlers.profile.encode import contact_free
from handlers.profile.read import SECTIONS, Profile, Stored, build_profile
from handlers.timing.members import (
    arm_op,
    cancel_op,
    deferred_member,
    timer_member,
    timer_value,
)
from handlers.triggers import decide
from handlers.triggers.reasons import log_position, on_event_reason
from handlers.triggers.work import BatchWork, ShardWork
from rules.activation import activation, event_view
from rules.expressions import ALL, ConditionError
from rules.loader import CompiledRule, GoalIndex, RuleSet
from rules.send_gate import SendGate
from rules.shop_config import ShopConfig
from schemas.events import Envelope

log = logging.getLogger("crmstream.triggers")

_DAY_MS = 86_400_000


def _time_of(entry: tuple[Envelope, int]) -> tuple[int, int]:
    # To the microsecond, as the times themselves order; integers compare without calling
    # into the parsed time zone.
    event = entry[0]
    return event.time_ms, event.time.microsecond % 1000


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


# Of an event type: the profile sections its rules read, and whether they read the event.
_Shape = tuple[frozenset[str], bool]


def items_of(event: Envelope) -> list[str]:
    """The items an event names: its lines', or its one item's."""
    data: Any = event.__dict__.get("data")
    if data is None:
        return []
    # Asked of the model's fields, not with hasattr: a pydantic model answers a name it
    # lacks by raising, which costs more than the rest of this together.
    fields = type(data).model_fields
    if "items" in fields:
        return [line.item_id for line in data.items]
    item = data.item_id if "item_id" in fields else None
    return [item] if item else []


class TriggerStage:
    """The rules, over events and profiles: candidates, arms, cancels and decisions put off."""

    def __init__(
        self,
        *,
        keys: Keys,
        rules: RuleSet,
        settings: TriggerSettings,
        config_of: Callable[[str], ShopConfig],
        hash_key: bytes | None = None,
    ) -> None:
        self.keys = keys
        self._rules = rules
        self.settings = settings
        self._config_of = config_of
        self._hash_key = hash_key
        self._journey_goals = GoalIndex.of(())
        self.goals = rules.goals
        # Per rule set, by (event type, deferring): what of the profile such an event is
        # evaluated with, and whether a rule it is evaluated for reads the event itself.
        self._shapes: tuple[RuleSet | None, dict[tuple[str, bool], _Shape]] = (None, {})

    @property
    def rules(self) -> RuleSet:
        return self._rules

    @rules.setter
    def rules(self, rules: RuleSet) -> None:
        self._rules = rules
        self.goals = rules.goals.merged(self._journey_goals)

    def use_journey_goals(self, goals: GoalIndex) -> None:
        """The running journeys' goals, converted by the same goal events as the rules'."""
        self._journey_goals = goals
        self.goals = self._rules.goals.merged(goals)

    def gate_of(self, shop: str) -> SendGate:
        """The shop's send gate: its caps per channel and its collection window."""
        return self._config_of(shop).send_gate

    def relevant(
        self, events: Sequence[Envelope], partitions: Sequence[int]
    ) -> list[tuple[Envelope, int]]:
        """The events some rule listens to, with their partitions, in the order they
        happened: a batch holds several topics side by side."""
        listened = self.rules.event_types
        relevant = [
            (event, partition)
            for event, partition in zip(events, partitions, strict=True)
            if event.subject is not None and event.type in listened  # type: ignore[attr-defined]
        ]
        relevant.sort(key=_time_of)
        return relevant

    def sections(
        self, relevant: Iterable[tuple[Envelope, int]], deferring: Mapping[int, bool]
    ) -> frozenset[str]:
        """The profile sections the rules deciding these events now read."""
        return profile_sections(
            rule
            for event, partition in relevant
            for rule in self._deciding(event.type, deferring[partition])  # type: ignore[attr-defined]
        )

    def evaluate(
        self,
        relevant: Sequence[tuple[Envelope, int]],
        deferring: Mapping[int, bool],
        stored: Mapping[tuple[str, str], Stored | None],
        work: BatchWork,
    ) -> Counter[str]:
        """Into ``work``: what these events cause, each against its customer's profile as of
        the event; decisions of a partition that defers go into its timing instead."""
        rules = self.rules
        outcomes: Counter[str] = Counter()
        for event, partition in relevant:
            shop, customer, kind = event.shop, event.who, event.type  # type: ignore[attr-defined]
            at_ms = event.time_ms
            ops = work.timer_ops[partition]
            for rule in rules.cancelling.get(kind, ()):
                member = timer_member(rule.rule.id, shop, customer)
                ops.append(cancel_op(member, at_ms, event_id=event.id))
            state = stored.get((shop, customer))
            if state is None:
                continue  # forgotten on request since: nothing to send
            # Windows and scores as of the event itself, whatever else its batch holds; only
            # what the rules read (and the facts, for consent), for speed.
            put_off = deferring[partition]
            sections, reads_event = self._shape(kind, put_off)
            profile = build_profile(
                shop, customer, at_ms, state, self._config_of(shop), sections=sections,
                for_conditions=True,
            )  # fmt: skip
            shard = work.shards[self.keys.trigger_shard(shop, customer)]
            self._evaluate(
                event, at_ms, profile, shard=shard, ops=ops, put_off=put_off,
                outcomes=outcomes, reads_event=reads_event,
            )  # fmt: skip
        return outcomes

    def _shape(self, kind: str, deferring: bool) -> _Shape:
        """For an event of ``kind``: the profile sections it is evaluated with now, and
        whether a rule it is evaluated for reads the event itself (CEL's view of an event
        costs a conversion). Worked out once a rule set, not once an event."""
        rules = self.rules
        if self._shapes[0] is not rules:
            self._shapes = (rules, {})
        known = self._shapes[1].get((kind, deferring))
        if known is None:
            deciding = (*rules.arming.get(kind, ()), *rules.on_event.get(kind, ()))
            reads_event = any(
                "event" in condition.reads
                for rule in deciding
                for condition in (rule.condition, rule.occurrence)
                if condition is not None
            )
            known = (profile_sections(self._deciding(kind, deferring)), reads_event)
            self._shapes[1][(kind, deferring)] = known
        return known

    def _deciding(self, kind: str, deferring: bool) -> tuple[CompiledRule, ...]:
        """The rules an event of ``kind`` is evaluated for now: those it arms, and its
        on-event rules unless their decision is put off (those decided on arrival never
        are)."""
        rules = self.rules
        arming = rules.arming.get(kind, ())
        now = rules.on_arrival if deferring else rules.on_event
        return (*arming, *now.get(kind, ()))

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
        reads_event: bool,
    ) -> None:
        rules, kind = self.rules, event.type  # type: ignore[attr-defined]
        view = event_view(event) if reads_event else None
        context = activation(view, profile, at_ms)
        for rule in rules.on_event.get(kind, ()):
            if put_off and not rule.ordering.on_arrival:
                # Behind on this partition: decided once its event time has passed this
                # event (handlers/triggers/due.py), with everything before it known.
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
        # A replay's events are old on the wall clock, which is what this measures in them.
        decided = "on_arrival" if rule.ordering.on_arrival else "in_order"
        metrics.DECISION_DELAY.labels(decided).observe(max(0.0, time.time() - at_ms / 1000))
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
            gate=self.gate_of(event.shop),
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
