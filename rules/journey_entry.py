"""Whether an event enters a customer into a journey, and under which instance key."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from rules.expressions import ConditionError
from rules.journey_loader import CompiledJourney
from rules.model import parse_duration


@dataclass(frozen=True, slots=True)
class Entries:
    """A customer's past entries into one journey (any version): what re-entry reads."""

    count: int = 0
    last_ms: int = 0


def entry_key(journey: CompiledJourney, now: Mapping[str, Any]) -> str | None:
    """The instance key the entry event gives ("" unless keyed), or None if it does not
    enter (its condition fails, or a keyed entry's event gives no key)."""
    try:
        if not journey.entry.holds(now):
            return None
        if journey.key is None:
            return ""
        value = journey.key.evaluate(now)
    except ConditionError:
        return None
    return None if value is None or value == "" else str(value)


def may_enter(
    journey: CompiledJourney, active: Collection[str], past: Entries, key: str, at_ms: int
) -> bool:
    """``active``: the keys of the customer's instances in the journey now."""
    entry = journey.journey.entry
    interval_ms = 0 if entry.min_interval is None else parse_duration(entry.min_interval) * 1000
    if past.count and at_ms - past.last_ms < interval_ms:
        return False
    if entry.reentry == "once":
        return past.count == 0
    if entry.reentry == "after_exit":
        return not active
    return key not in active and len(active) < entry.max_instances
