"""Why a trigger fired, as its message says it: the conditions that held, with the values
they read; and where an event came from, as log fields."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from handlers.profile.read import iso
from rules.loader import CompiledRule
from schemas.events import Envelope
from schemas.triggers import MatchedCondition


def on_event_reason(
    rule: CompiledRule, event: Envelope, context: Mapping[str, Any]
) -> list[MatchedCondition]:
    """What happened, then the condition that held over it (unless the rule has none)."""
    happened = MatchedCondition(
        condition=f"{event.type} happened",  # type: ignore[attr-defined]
        values={"event.id": event.id, "event.time": iso(event.time_ms)},
    )
    if rule.rule.condition.strip() == "true":
        return [happened]
    return [
        happened,
        MatchedCondition(condition=rule.condition.text, values=rule.condition.values_read(context)),
    ]


def absence_reason(rule: CompiledRule, armed: Mapping[str, Any], deadline: int) -> MatchedCondition:
    absence = rule.rule.absence
    return MatchedCondition(
        condition=f"{absence.after} not followed by {absence.missing} within {absence.within}",
        values={
            "armed_by": armed["armed_by"],
            "armed_at": iso(armed["armed_at"]),
            "deadline": iso(deadline),
        },
    )


def log_position(at: str) -> dict[str, str | int]:
    """``topic[partition]@offset`` as log fields (none when unknown)."""
    topic, _, rest = at.partition("[")
    partition, _, offset = rest.partition("]@")
    if not offset:
        return {}
    return {"topic": topic, "partition": int(partition), "offset": int(offset)}
