"""How one instance of a journey moves: pure, so the worker, the backtest and the tests
share it, and the Redis Function that stores a move has only to check and write it.

An instance is a Position. A move starts from a stimulus (the entry event, an event for
the instance, its wait ending) and runs the steps that take no time (branch, split,
exit, a wait_for already met) until the instance holds at a wait, leaves, or reaches a
send. A send stops the move: the guards that decide its outcome run in Redis, so a
Sending carries where each outcome leads, and the move goes on from there once the
outcome is known. Each stop is therefore one write: the position and its effect
together.

Semantics, for a customer, in event-time order (docs/DESIGN.md §3, "Journeys"):

- An event first takes instances out (``exit_on``), then is noted by each ``wait_for``
  step it meets (the first such event since the instance entered), moving an instance
  that waits there; then it may enter the customer (rules/journey_entry.py). With a
  keyed entry, an event concerns only the instance of its own key, or every instance
  if it has no key (a survey answer names no order).
- A wait ends, and a wait_for times out, at its own time: an event stamped at that very
  moment still counts as within it.
- Past its lifetime an instance is out, whatever it waits for.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo

from crmstream.errors import RuleError
from rules.activation import activation
from rules.expressions import ConditionError, trim
from rules.journey_loader import CompiledJourney
from rules.journey_model import EXIT, SEND_OUTCOMES, Send, SendOutcome, Step, WaitUntil
from rules.model import parse_clock, parse_duration
from schemas.ids import uuid5_text

# The namespace of every journey send id: the derivation is the contract.
SEND_NAMESPACE: Final = uuid.UUID("0b7c2f4e-8d1a-5c3e-9f60-6a6f75726e79")
CONTROL: Final = "holdout"  # the reason of an exit by the holdout path
FINISHED: Final = "finished"  # past the last step


class JourneyLoopError(RuleError):
    """Steps ran on without holding (the loader refuses such a file; this is the backstop)."""


@dataclass(frozen=True, slots=True)
class Position:
    """Where one instance is; what Redis keeps of it, in the customer's own slot."""

    journey: str
    version: int
    key: str  # "" unless the entry is keyed
    instance: str  # the id of the event that entered it: with the step and visit, a send's id
    step: str
    visit: int  # steps entered so far: with the step, it names each send
    entered_ms: int
    since_ms: int  # when it came to ``step``
    until_ms: int  # when the wait ends (or the wait_for times out); 0 elsewhere
    entry: Mapping[str, Any]  # what the branches read of the entry event, as they see it
    # wait_for step → the time of the first event since entry that met it
    matched: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Customer:
    """What a move may read of the customer: as of the move, from the caller."""

    shop: str
    customer: str
    profile: Mapping[str, Any]  # the profile as conditions see it
    timezone: ZoneInfo  # the customer's, else the shop's


@dataclass(frozen=True, slots=True)
class Held:
    position: Position  # at a wait or a wait_for, until ``position.until_ms``


@dataclass(frozen=True, slots=True)
class Exited:
    position: Position  # where it was when it left
    reason: str
    at_ms: int

    @property
    def control(self) -> bool:
        return self.reason == CONTROL


@dataclass(frozen=True, slots=True)
class Sending:
    position: Position  # at the send step
    send_id: str
    send: Send
    at_ms: int
    then: Mapping[SendOutcome, str]  # outcome → the step it leads to (or EXIT)


Move = Held | Exited | Sending


def send_id(shop: str, customer: str, position: Position) -> str:
    name = "\x1f".join(
        (shop, customer, position.journey, str(position.version), position.instance,
         position.step, str(position.visit))
    )  # fmt: skip
    return uuid5_text(SEND_NAMESPACE, name)


def enter(
    journey: CompiledJourney, who: Customer, entry: Mapping[str, Any], key: str, at_ms: int
) -> Move:
    """A new instance, moved from its first step; ``entry`` is the event as conditions see
    it (its ``id`` names the instance; the instance keeps what its branches read of it)."""
    spec = journey.journey
    kept = trim(entry, journey.entry_read)
    start = Position(spec.id, spec.version, key, str(entry["id"]), "", 0, at_ms, at_ms, 0, kept)
    return arrive(journey, who, start, spec.steps[0].id, at_ms)


def due_ms(journey: CompiledJourney, position: Position) -> int:
    """When a held instance moves by time alone: its wait's end, or its lifetime's."""
    lifetime_end = position.entered_ms + journey.journey.lifetime_s * 1000
    return min(position.until_ms, lifetime_end) if position.until_ms else lifetime_end


def on_due(journey: CompiledJourney, who: Customer, position: Position) -> Move:
    """The held instance's time has come (at ``due_ms``)."""
    at_ms = due_ms(journey, position)
    if at_ms == position.entered_ms + journey.journey.lifetime_s * 1000:
        return Exited(position, "lifetime", at_ms)
    step = _step(journey, position.step)
    if step.wait_for is not None:
        return arrive(journey, who, position, step.wait_for.timed_out, at_ms)
    return arrive(journey, who, position, _onward(journey, position.step), at_ms)


def on_event(
    journey: CompiledJourney, who: Customer, position: Position, event: Mapping[str, Any],
    at_ms: int,
) -> Move | Position | None:  # fmt: skip
    """An event of the customer's for a held instance: a Move if it moves, the Position
    if only its notes changed (a wait_for met ahead of time), None if nothing changed."""
    spec = journey.journey
    kind = event.get("type")
    now = activation(event, who.profile, at_ms)
    for exit_on, condition in zip(spec.exit_on, journey.exit_on, strict=True):
        if exit_on.event == kind and _holds(condition, now) and _same_key(journey, position, now):
            return Exited(position, f"exit_on {kind}", at_ms)
    matched = dict(position.matched)
    for step in spec.steps:
        wait_for = step.wait_for
        if (
            wait_for is None
            or wait_for.event != kind
            or step.id in matched
            or not _holds(journey.waits_for[step.id], now)
            or not _same_key(journey, position, now)
        ):
            continue
        matched[step.id] = at_ms
    if matched == position.matched:
        return None
    noted = replace(position, matched=matched)
    current = _step(journey, position.step)
    if current.wait_for is not None and position.step in matched:
        return arrive(journey, who, noted, _matched_target(journey, current), at_ms)
    return noted


def after_send(
    journey: CompiledJourney, who: Customer, sending: Sending, outcome: SendOutcome
) -> Move:
    """The guards decided the send: on to where its outcome leads."""
    return arrive(journey, who, sending.position, sending.then[outcome], sending.at_ms)


def after_decision(
    journey: CompiledJourney, who: Customer, position: Position, outcome: SendOutcome
) -> Move:
    """An instance kept at a send whose outcome is known (the walk that sent it stopped
    there): on to where the outcome leads, at the send's time."""
    step = _step(journey, position.step)
    if step.send is None:
        raise ValueError(f"step {step.id} of {journey.journey.id} sends nothing")
    target = step.send.outcomes.get(outcome, _onward(journey, step.id))
    return arrive(journey, who, position, target, position.since_ms)


def arrive(
    journey: CompiledJourney, who: Customer, position: Position, target: str, at_ms: int
) -> Move:
    """Enter ``target`` at ``at_ms`` and run on until the instance holds, leaves or sends."""
    came_from = position.step
    for _ in range(len(journey.journey.steps) + 1):
        if target == _HOLDOUT:
            return Exited(position, CONTROL, at_ms)
        if target == EXIT:
            reason = FINISHED if _is_last(journey, came_from) else f"exit after {came_from}"
            return Exited(position, reason, at_ms)
        step = _step(journey, target)
        position = _entering(position, step.id, at_ms)
        if step.send is not None:
            onward, named = _onward(journey, step.id), step.send.outcomes
            then = {outcome: named.get(outcome, onward) for outcome in SEND_OUTCOMES}
            sid = send_id(who.shop, who.customer, position)
            return Sending(position, sid, step.send, at_ms, then)
        if step.wait is not None:
            until = _wait_end(step.wait, at_ms, who.timezone)
            return Held(_holding(position, until))
        if step.wait_for is not None:
            if position.matched.get(step.id) is not None:
                came_from, target = step.id, _matched_target(journey, step)
                continue
            return Held(_holding(position, at_ms + step.wait_for.timeout_s * 1000))
        if step.exit is not None:
            return Exited(position, step.exit, at_ms)
        came_from, target = step.id, _choose(journey, who, position, step, at_ms)
    raise JourneyLoopError(f"journey {journey.journey.id} ran on without holding at {target}")


_HOLDOUT: Final = ""  # no step is named so: the holdout path's target


# A move makes a Position at each step it passes: built field by field, as
# dataclasses.replace (which looks every field up by name) made most of a move's cost.
def _entering(position: Position, step: str, at_ms: int) -> Position:
    """``position`` come to ``step`` at ``at_ms``, one visit on, holding nowhere yet."""
    p = position
    return Position(
        p.journey, p.version, p.key, p.instance, step, p.visit + 1, p.entered_ms, at_ms, 0,
        p.entry, p.matched,
    )  # fmt: skip


def _holding(position: Position, until_ms: int) -> Position:
    """``position`` held until ``until_ms``."""
    p = position
    return Position(
        p.journey, p.version, p.key, p.instance, p.step, p.visit, p.entered_ms, p.since_ms,
        until_ms, p.entry, p.matched,
    )  # fmt: skip


def _choose(
    journey: CompiledJourney, who: Customer, position: Position, step: Step, at_ms: int
) -> str:
    """Where a branch or a split sends the customer on."""
    if step.branch is not None:
        now = activation(position.entry, who.profile, at_ms)
        for case, condition in zip(step.branch.cases, journey.cases[step.id], strict=True):
            if _holds(condition, now):
                return case.go
        return step.branch.otherwise or _onward(journey, step.id)
    assert step.split is not None  # noqa: S101 -- arrive hands over only branches and splits
    paths = step.split.paths
    text = f"{journey.journey.id}\x1f{step.id}\x1f{who.customer}".encode()
    bucket = int.from_bytes(hashlib.sha256(text).digest()[:8], "big") % sum(
        path.weight for path in paths
    )
    for path in paths:
        if bucket < path.weight:
            return path.go if path.go is not None else _HOLDOUT
        bucket -= path.weight
    raise AssertionError("a bucket below the total weight falls in some path")


def _wait_end(wait: str | WaitUntil, at_ms: int, timezone: ZoneInfo) -> int:
    if isinstance(wait, str):
        return at_ms + parse_duration(wait) * 1000
    clock = parse_clock(wait.until)
    local = datetime.fromtimestamp(at_ms / 1000, UTC).astimezone(timezone)
    day = local.date()
    while True:
        candidate = datetime.combine(day, clock, tzinfo=timezone)
        if candidate > local:
            return int(candidate.timestamp() * 1000)
        day += timedelta(days=1)


def _holds(condition: Any, now: Mapping[str, Any]) -> bool:  # noqa: ANN401 -- a Condition
    try:
        return bool(condition.holds(now))
    except ConditionError:
        return False  # a condition that cannot be evaluated on this event is not met


def _same_key(journey: CompiledJourney, position: Position, now: Mapping[str, Any]) -> bool:
    if journey.key is None:
        return True
    try:
        value = journey.key.evaluate(now)
    except ConditionError:
        return True  # the awaited event has no key: it is every instance's
    return value is None or str(value) == position.key


def _step(journey: CompiledJourney, step_id: str) -> Step:
    return journey.journey.steps[journey.index_of[step_id]]


def _index(journey: CompiledJourney, step_id: str) -> int:
    return journey.index_of[step_id]


def _is_last(journey: CompiledJourney, step_id: str) -> bool:
    return step_id == journey.journey.steps[-1].id


def _onward(journey: CompiledJourney, step_id: str) -> str:
    """Where the step goes on to when it says nothing else: ``next``, or the step after."""
    steps = journey.journey.steps
    index = _index(journey, step_id)
    step = steps[index]
    if step.next is not None:
        return step.next
    return steps[index + 1].id if index + 1 < len(steps) else EXIT


def _matched_target(journey: CompiledJourney, step: Step) -> str:
    assert step.wait_for is not None  # noqa: S101 -- called for wait_for steps only
    return step.wait_for.matched or _onward(journey, step.id)
