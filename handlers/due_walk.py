"""What a partition's walk hands over (handlers/timing), to whom: the rules' timers and
decisions put off go to the rules (handlers/triggers/due.py), the journeys' events and
waits to the journeys (handlers/journeys/runner.py), each customer's in their order.

Sends decided together meet the send gate highest priority first. A walk's rule
decisions and journey moves are decided together, so the rules that outrank every journey
their customer's shop runs are decided before the journeys walk, and the others after.
A rule ranked between two journeys of its shop goes after both.
"""

from __future__ import annotations

from collections import Counter

from handlers.journeys.runner import JOURNEY_KINDS, JourneyRunner
from handlers.profile.read import ProfileReader, ReadBack, key_kinds
from handlers.timing import DueEntry
from handlers.timing.members import customer_of
from handlers.triggers.due import DueDecider


class DueWalk:
    """Decides what a partition's walk hands over; returns the outcomes by name."""

    def __init__(self, rules: DueDecider, journeys: JourneyRunner, reader: ProfileReader) -> None:
        self._rules = rules
        self._journeys = journeys
        self._reader = reader

    async def __call__(self, due: list[DueEntry]) -> Counter[str]:
        journeys = [entry for entry in due if entry[0][:1] in JOURNEY_KINDS]
        if not journeys:
            return await self._rules(due)
        rules = [entry for entry in due if entry[0][:1] not in JOURNEY_KINDS]
        known = None
        if rules:
            # Rules and journeys often read the same customers in a walk (a registration is
            # welcomed by a rule and enters a journey): their profiles are read once.
            customers, sections = self._rules.wants(rules)
            sections |= self._journeys.sections
            customers += [customer_of(member) for member, _, _ in journeys]
            known = ReadBack(
                frozenset(key_kinds(sections)), await self._reader.read_stored(customers, sections)
            )
        first, after = self._rules.outranking(rules, self._journeys.top_priority)
        outcomes = await self._rules(first, known) if first else Counter[str]()
        outcomes.update(await self._journeys(journeys, known))
        if after:
            outcomes.update(await self._rules(after, known))
        return outcomes
