"""One customer's share of a journey walk (handlers/journeys/runner.py): their entries, in
order, as the stops they make, each a Function call answered before the next."""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Generator, Mapping, Sequence
from typing import Any, Final

from crmstream import metrics
from handlers.functions.timers import PutOff
from handlers.functions.triggers import Candidate, JourneyMove, JourneyMoved
from handlers.journeys.send import OUTCOME_OF, journey_candidate
from handlers.journeys.stops import customer_as_read, stop_call, wait_end, walked_at
from handlers.journeys.store import CustomerJourneys, decode_stored
from handlers.journeys.store import Stored as StoredInstance
from handlers.journeys.walking import Walking
from handlers.profile.read import Stored
from handlers.timing.members import (
    JOURNEY_WAIT,
    DueEntry,
    journey_wait_member,
    journey_wait_of,
    parse_member,
)
from rules.activation import activation
from rules.journey_entry import Entries, entry_key, may_enter
from rules.journey_loader import CompiledJourney
from rules.journey_machine import (
    Customer,
    Exited,
    Held,
    Move,
    Position,
    Sending,
    after_decision,
    after_send,
    due_ms,
    enter,
    on_due,
    on_event,
)

NEW_VERSION: Final = "new version"  # why those in an older version left, told to
# What a send reads of a customer nobody knows the profile of: no consent, no time zone.
_NO_PROFILE: Final[dict[str, Any]] = {"facts": {"consents": {}, "timezone": None}}

Moves = Generator[JourneyMove, JourneyMoved, None]
# A journey's moves counted by outcome: the labelled child found once, not once a move.
_moves = functools.lru_cache(maxsize=1024)(metrics.JOURNEY_MOVES.labels)


class CustomerWalk:
    """One customer's entries of a walk, in order, as the stops they make."""

    def __init__(  # noqa: PLR0917 -- one customer's share of a walk
        self,
        runner: Walking,
        shop: str,
        customer: str,
        state: CustomerJourneys,
        stored: Stored | None,
        outcomes: Counter[str],
    ) -> None:
        self.runner, self.shop, self.customer = runner, shop, customer
        self.instances: dict[tuple[str, str], Position] = {
            slot: held.position for slot, held in state.instances.items()
        }
        self.pending = {
            slot: held.decision
            for slot, held in state.instances.items()
            if held.decision is not None and held.position.until_ms == 0
        }
        self.entries = dict(state.entries)
        self.stored = stored
        self.outcomes = outcomes
        self.config = runner.config_of(shop)
        self.partition: int | None = None
        # The waits armed for the customer's instances when the walk began: an erasure
        # takes them (their names hold the customer's).
        self.armed = [
            (name, key, held.position.visit)
            for (name, key), held in state.instances.items()
            if held.position.until_ms
        ]
        self.erased = False
        self._who: Customer | None = None

    def who(self, at_ms: int) -> Customer:
        """The customer as the journeys' conditions and sends read them: built once a walk
        (what the pack reads, counters and facts, a walk does not move)."""
        if self._who is None:
            self._who = customer_as_read(
                self.shop, self.customer, at_ms, self.stored, self.config, self.runner.sections
            )
        return self._who

    def run(self, entries: Sequence[DueEntry]) -> Moves:
        for _member, _at, armed in entries:
            self.partition = int(armed.get("partition", 0))
            if armed.get("erasure"):
                # Taken in its turn: the journeys go with the customer (erased, below).
                self.erased = True
        if self.stored is None or self.erased:
            return  # erased, or never known: nothing to move
        for slot, decision in list(self.pending.items()):
            # A send decided, the walk cut short before it went on: on from there.
            journey = self.runner.version_of(slot[0], self.instances[slot])
            if journey is not None:
                kept = self.instances[slot]
                outcome = OUTCOME_OF[decision]
                moved = after_decision(journey, self.who(kept.since_ms), kept, outcome)
                yield from self._settle(journey, kept, moved)
        running = self.runner.running(self.shop)
        for member, at_ms, armed in entries:
            # Waits that end before this entry end first, those this very walk began
            # included (the walk armed none of them yet): the customer's own time order.
            yield from self._waits_ending_before(at_ms)
            kind, name, _shop, _customer = parse_member(member)
            if kind == JOURNEY_WAIT:
                # Its wait ended just above, or the instance moved on since (a walk before
                # may have died before arming the next wait: armed again below), or it was
                # woken early by a new version that takes those in older ones out.
                slot = (name, journey_wait_of(member)[0])
                waiting = self.instances.get(slot)
                if waiting is not None and self.runner.replaced(name, waiting):
                    journey = self.runner.version_of(name, waiting)
                    if journey is not None:
                        yield from self._settle(
                            journey, waiting, Exited(waiting, NEW_VERSION, at_ms)
                        )
                continue
            view = armed.get("view")
            if isinstance(view, dict):
                yield from self._event(view, at_ms, running)

    def _waits_ending_before(self, at_ms: int) -> Moves:
        """Every held instance whose wait ends before ``at_ms`` moves on, soonest first (a
        wait ending at that very moment lets an event of that moment count within it)."""
        while True:
            ending = [
                (walked_at(journey, position), slot)
                for slot, position in self.instances.items()
                if position.until_ms and (journey := self.runner.version_of(slot[0], position))
            ]
            due = [entry for entry in ending if entry[0] <= at_ms]
            if not due:
                return
            _at, slot = min(due)
            waiting = self.instances[slot]
            journey = self.runner.version_of(slot[0], waiting)
            assert journey is not None  # noqa: S101 -- found just above
            ended: Move = (
                Exited(waiting, NEW_VERSION, due_ms(journey, waiting))
                if self.runner.replaced(slot[0], waiting)
                else on_due(journey, self.who(due_ms(journey, waiting)), waiting)
            )
            yield from self._settle(journey, waiting, ended)
            if self.instances.get(slot) == waiting:
                return  # a stop refused and the instance unchanged: leave it to its walk

    def _event(self, view: Mapping[str, Any], at_ms: int, running: frozenset[str]) -> Moves:
        """``view``: the event as conditions see it (rules/activation.py event_view)."""
        journeys, kind = self.runner.journeys, str(view.get("type"))
        held = sorted(self.instances.items(), key=self._by_priority)
        replaced: set[str] = set()
        for (name, _key), position in held:
            journey = self.runner.version_of(name, position)
            if journey is None:
                continue
            if position.since_ms > at_ms:
                # Older than the instance's last move: walked before, and read again (a
                # redelivery); taking it now would move the instance twice.
                continue
            if self.runner.replaced(name, position):
                yield from self._settle(journey, position, Exited(position, NEW_VERSION, at_ms))
                replaced.add(name)
                continue
            if kind not in journey.awaits:
                continue
            moved = on_event(journey, self.who(at_ms), position, view, at_ms)
            if isinstance(moved, Position):
                yield from self._note(position, moved)
            elif moved is not None:
                yield from self._settle(journey, position, moved)
        for journey in journeys.entering.get(kind, ()):
            spec = journey.journey
            if spec.id not in running or spec.id in replaced:
                # Taken out of an older version by this very event: it does not enter them
                # again (nobody is entered twice because a version changed).
                continue
            who = self.who(at_ms)
            key = entry_key(journey, activation(view, who.profile, at_ms))
            active = [k for (j, k) in self.instances if j == spec.id]
            past = self.entries.get(spec.id, Entries())
            if key is None or not may_enter(journey, active, past, key, at_ms):
                continue
            self.entries[spec.id] = Entries(past.count + 1, at_ms)
            yield from self._settle(journey, None, enter(journey, who, view, key, at_ms))

    def _by_priority(self, item: tuple[tuple[str, str], Position]) -> tuple[int, str, int, str]:
        """Held instances in the order an event moves them: the higher priority first (it
        may claim the customer's last send slot first), then by journey, entry and key."""
        (name, key), position = item
        journey = self.runner.version_of(name, position)
        return (-journey.journey.priority if journey else 0, name, position.entered_ms, key)

    def _settle(self, journey: CompiledJourney, before: Position | None, move: Move) -> Moves:
        """Write ``move`` stop by stop until the instance holds or leaves. A send whose
        outcomes all lead to the same place goes in one call with the stop after it."""
        while True:
            send: Candidate | None = None
            stop = move
            if isinstance(move, Sending):
                send = journey_candidate(
                    journey, move, shop=self.shop, customer=self.customer,
                    profile=dict(self.who(move.at_ms).profile) or _NO_PROFILE,
                    gate=self.config.send_gate, daily_cap=self.runner.daily_cap,
                )  # fmt: skip
                if len(set(move.then.values())) == 1:
                    onward = after_send(journey, self.who(move.at_ms), move, "sent")
                    if not isinstance(onward, Sending):
                        stop = onward
            reply = yield self._stop(journey, before, stop, send)
            slot = (stop.position.journey, stop.position.key)
            if not reply.moved:
                held = self._resync(slot, reply)
                if held is None or held.decision is None or held.position.until_ms:
                    return
                # Kept at a send another walk decided: on from there.
                before = held.position
                outcome = OUTCOME_OF[held.decision]
                move = after_decision(journey, self.who(before.since_ms), before, outcome)
                continue
            if before is None:
                self._count(journey, "entered")
            if send is not None:
                decided = OUTCOME_OF[reply.decision] if reply.decision is not None else "sent"
                self._count(journey, decided)
            if isinstance(stop, Sending):
                before = stop.position
                self.instances[slot] = before
                move = after_send(journey, self.who(stop.at_ms), stop, decided)
                continue
            if isinstance(stop, Held):
                self.instances[slot] = stop.position
            else:
                self.instances.pop(slot, None)
                self._count(journey, "exited")
            return

    def _stop(
        self, journey: CompiledJourney, before: Position | None, stop: Move, send: Candidate | None
    ) -> JourneyMove:
        return stop_call(self.runner.store, self.shop, self.customer, journey, before, stop, send)

    def _count(self, journey: CompiledJourney, outcome: str) -> None:
        self.outcomes[f"journey_{outcome}"] += 1
        _moves(journey.journey.id, outcome).inc()

    def _note(self, before: Position, after: Position) -> Moves:
        """Notes only (a wait_for met ahead of time): the instance stays where it is."""
        reply = yield self.runner.store.call(
            self.shop, self.customer, before, after, at_ms=after.since_ms
        )
        slot = (after.journey, after.key)
        if reply.moved:
            self.instances[slot] = after
        else:
            self._resync(slot, reply)

    def _resync(self, slot: tuple[str, str], reply: JourneyMoved) -> StoredInstance | None:
        """Redis holds the instance elsewhere than this walk read it: take it from there."""
        self.outcomes["journey_stale"] += 1
        if reply.stored is None:
            self.instances.pop(slot, None)
            return None
        held = decode_stored(reply.stored)
        self.instances[slot] = held.position
        return held

    def erased_waits(self) -> list[tuple[int, str]]:
        """When the walk erased the customer: the names of the waits to take away."""
        if not self.erased or self.partition is None:
            return []
        return [
            (self.partition, journey_wait_member(name, self.shop, self.customer, key, visit))
            for name, key, visit in self.armed
        ]

    def waits(self) -> list[tuple[int, PutOff]]:
        """The end of every held instance's wait, to arm (again: the same end is harmless).

        Every one, not only those this walk moved. A move is written in the customer's slot
        and its wait armed in the partition's, after the walk: a worker that died in
        between left instances held with no wait armed, and walking its entries again need
        not move them (the instance entered already; the event is awaited by nobody)."""
        found: list[tuple[int, PutOff]] = []
        if self.partition is None or self.erased:
            return found
        for (name, key), position in self.instances.items():
            journey = self.runner.version_of(name, position)
            if journey is None or position.until_ms == 0:
                continue
            found.append(
                (
                    self.partition,
                    wait_end(journey, self.shop, self.customer, key, position, self.partition),
                )
            )
        return found
