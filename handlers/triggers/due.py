"""What falls due in a partition's walk, decided: an absence timer becomes its trigger, a
decision put off while the partition was behind is taken now, each against the
customer's profile as of its own moment (the deadline, or the event's time)."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import Any, Final

from crmstream import metrics
from handlers.functions.triggers import Candidate
from handlers.profile.read import Profile, ProfileReader, ReadBack, build_profile
from handlers.timing import DueEntry
from handlers.timing.members import PUT_OFF, parse_member
from handlers.triggers import decide
from handlers.triggers.reasons import absence_reason
from handlers.triggers.stage import TriggerStage, profile_sections
from handlers.triggers.work import BatchWork
from handlers.triggers.writer import TriggerWriter
from rules.activation import activation, event_view
from rules.loader import CompiledRule
from schemas.decode import Decoder
from schemas.events import Envelope
from schemas.triggers import MatchedCondition

_NO_LIMIT: Final = 2**63  # ms: no time is too far ahead for a decision put off


class DueDecider:
    def __init__(self, stage: TriggerStage, reader: ProfileReader, writer: TriggerWriter) -> None:
        self._stage = stage
        self._reader = reader
        self._writer = writer
        self._decoder = Decoder()

    def wants(self, due: list[DueEntry]) -> tuple[list[tuple[str, str]], frozenset[str]]:
        """The customers whose profiles deciding ``due`` reads, and the sections it reads."""
        stage = self._stage
        members = [parse_member(member) for member, _, _ in due]
        rules = [rule for _, rule_id, _, _ in members if (rule := stage.rules.get(rule_id))]
        return [(shop, who) for _, _, shop, who in members], profile_sections(rules, "cart")

    def outranking(
        self, due: list[DueEntry], floor_of: Callable[[str], int | None]
    ) -> tuple[list[DueEntry], list[DueEntry]]:
        """``due`` split in two, each in its order: the entries whose rule's priority is
        above the floor of their shop (``floor_of``; None: no floor, nothing above it), and
        the rest."""
        above: list[DueEntry] = []
        rest: list[DueEntry] = []
        floors: dict[str, int | None] = {}  # by shop: asked once a walk, not once an entry
        for entry in due:
            _kind, rule_id, shop, _customer = parse_member(entry[0])
            if shop not in floors:
                floors[shop] = floor_of(shop)
            rule, floor = self._stage.rules.get(rule_id), floors[shop]
            outranks = rule is not None and floor is not None and rule.rule.priority > floor
            (above if outranks else rest).append(entry)
        return above, rest

    async def __call__(self, due: list[DueEntry], known: ReadBack | None = None) -> Counter[str]:
        """Decide every entry a walk handed over; their triggers go out in one round trip.
        ``known``: profiles read already for this walk (not read again)."""
        stage = self._stage
        members = [parse_member(member) for member, _, _ in due]
        stored = await self._reader.read_stored(*self.wants(due), known)
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
                self._reader.config_of(shop),
                sections=profile_sections([rule], "cart"),
                for_conditions=True,
            )
            candidate: Candidate | None
            if kind == PUT_OFF:
                candidate = self._decide_later(rule, deadline, armed, profile, outcomes)
            else:
                candidate = self._absence(rule, shop, customer, deadline, armed, profile)
                # Event time and the wall clock agree once caught up; a replay's deadlines are
                # old on the wall clock, which is what this measures in them.
                metrics.TIMER_DELAY.observe(max(0.0, time.time() - deadline / 1000))
            if candidate is not None:
                work.shards[stage.keys.trigger_shard(shop, customer)].candidates.append(candidate)
        outcomes.update(await self._writer.submit(work))
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
        context = activation(event_view(event), profile, at_ms)
        return self._stage.event_candidate(rule, event, at_ms, profile, context, outcomes)

    def _absence(  # noqa: PLR0917 -- one due timer, unpacked
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
            gate=self._stage.gate_of(shop),
            daily_cap=self._stage.settings.daily_cap,
        )
