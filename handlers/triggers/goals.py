"""Goal events: an order (say) that converts the triggers its customer was sent before it,
within each rule's goal window. Pure: queued into the batch's work per trigger shard."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from crmstream.logcontext import where
from handlers.functions.triggers import GoalEvent
from handlers.keys import Keys
from handlers.triggers.reasons import log_position
from handlers.triggers.work import ShardWork
from rules.activation import activation, event_view
from rules.expressions import ConditionError
from rules.loader import GoalIndex
from schemas.events import Envelope

log = logging.getLogger("crmstream.triggers")


def queue_goals(
    goals: GoalIndex, keys: Keys, events: Sequence[Envelope], work: Mapping[str, ShardWork]
) -> None:
    """Queue the goal events of the batch: each converts the triggers (and the journey
    instances) it follows."""
    by_event = goals.by_event
    for event in events:
        specs = by_event.get(event.type)  # type: ignore[attr-defined]
        if not specs or event.subject is None:
            continue  # a conversion is a known customer's
        at_ms = event.time_ms
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
            shard = work[keys.trigger_shard(event.shop, event.subject)]
            who = f"{event.shop}:{event.subject}"
            shard.goal_events.append(GoalEvent(who, spec.key, at_ms, event.id))
