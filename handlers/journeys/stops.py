"""What one stop of a journey walk writes (handlers/journeys/walk.py): the Function call
that moves the instance, with the journey's counts and, on leaving, the decision log's
account; the end of the wait it holds at, to arm; and the customer as the journeys'
conditions and sends read them."""

from __future__ import annotations

from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson

from handlers.functions.timers import PutOff
from handlers.functions.triggers import Candidate, JourneyMove
from handlers.journeys.stats import counted_for, exit_count
from handlers.journeys.store import JourneyStore
from handlers.profile.read import Stored, build_profile
from handlers.timing.members import journey_wait_member, timer_value
from rules.journey_loader import CompiledJourney
from rules.journey_machine import Customer, Held, Move, Position, Sending, due_ms
from rules.shop_config import ShopConfig

_FALLBACK_ZONE: Final = ZoneInfo("Asia/Shanghai")


def customer_as_read(  # noqa: PLR0917 -- one customer, as of one moment
    shop: str,
    customer: str,
    at_ms: int,
    stored: Stored | None,
    config: ShopConfig,
    sections: frozenset[str],
) -> Customer:
    """Only the ``sections`` the journeys read are built; the time zone is the customer's,
    else the shop's. A customer nobody knows has no profile (no consent)."""
    profile: dict[str, Any] = {}
    zone = _FALLBACK_ZONE
    if stored is not None:
        profile = build_profile(
            shop, customer, at_ms, stored, config, sections=sections, for_conditions=True
        )
        try:
            zone = ZoneInfo(profile["facts"].get("timezone") or config.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            zone = _FALLBACK_ZONE
    return Customer(shop, customer, profile, zone)


def stop_call(  # noqa: PLR0917 -- one stop of one instance
    store: JourneyStore,
    shop: str,
    customer: str,
    journey: CompiledJourney,
    before: Position | None,
    stop: Move,
    send: Candidate | None,
) -> JourneyMove:
    """The call that writes one stop, with the journey's stats: entries, and how many
    are held at each step now."""
    spec = journey.journey
    goal = (journey.goal.key, journey.goal_window_ms)
    before_step = None if before is None else before.step
    held_before = before is not None and before.until_ms > 0
    if isinstance(stop, Held):
        counted = counted_for(before_step, stop.position.step, held_before=held_before)
        return store.call(shop, customer, before, stop.position, at_ms=stop.position.since_ms,
                          counted=counted, send=send, goal=goal)  # fmt: skip
    counted = counted_for(before_step, None, held_before=held_before)
    if isinstance(stop, Sending):
        return store.call(shop, customer, before, stop.position, at_ms=stop.at_ms,
                          counted=counted, send=send, goal=goal)  # fmt: skip
    why = {"journey": spec.id, "version": spec.version,
           "step": stop.position.step, "reason": stop.reason, "at": stop.at_ms,
           "instance": stop.position.instance}  # fmt: skip
    return store.call(shop, customer, before, None, at_ms=stop.at_ms, why=orjson.dumps(why),
                      send=send, counted=[*counted, exit_count(stop.reason)],
                      control=stop.control, goal=goal, passing=stop.position)  # fmt: skip


def walked_at(journey: CompiledJourney, position: Position) -> int:
    """When the walk takes a wait's end: just after it, so that an event stamped at that
    very moment, read later, still comes first (it counts as within the wait)."""
    return due_ms(journey, position) + 1


def wait_end(  # noqa: PLR0917 -- one held instance
    journey: CompiledJourney, shop: str, customer: str, key: str, position: Position,
    partition: int,
) -> PutOff:  # fmt: skip
    """The end of a held instance's wait, armed among the partition's timers."""
    at = walked_at(journey, position)
    member = journey_wait_member(journey.journey.id, shop, customer, key, position.visit)
    value = timer_value(at, position.since_ms, {"visit": position.visit, "partition": partition})
    return PutOff(member, at, value)
