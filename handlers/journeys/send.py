"""A journey's send, as a candidate for the guards every trigger passes (emit.lua): the
channel by consent, the local day of the cap, quiet hours, the message itself."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

from handlers.functions.triggers import JOURNEY_STATS_PREFIX, Candidate, Decision
from handlers.triggers.decide import decision_why, first_channel, gate_slot, release_at, zone_of
from rules.journey_loader import CompiledJourney
from rules.journey_machine import Sending
from rules.journey_model import SendOutcome
from rules.send_gate import SendGate
from schemas.triggers import Trigger, TriggerData

SOURCE: Final = "crmstream/journeys"
# What the guards decided → where the journey goes on (rules/journey_model.py outcomes).
OUTCOME_OF: Final[dict[Decision, SendOutcome]] = {
    Decision.SENT: "sent",
    Decision.HELD: "held",
    Decision.CAPPED: "capped",
    Decision.COOLDOWN: "capped",
    Decision.SKIPPED: "no_consent",
    Decision.EXPIRED: "capped",
    # Only an instance made again after an erasure could meet its own send id twice.
    Decision.DUPLICATE: "sent",
}


def stats_name(journey: str, version: int, step: str) -> str:
    """What a journey step's sends are counted under among the triggers' stats."""
    return f"{JOURNEY_STATS_PREFIX}{journey}:{version}:{step}"


def journey_candidate(
    journey: CompiledJourney,
    sending: Sending,
    *,
    shop: str,
    customer: str,
    profile: dict[str, Any],
    gate: SendGate,
    daily_cap: int,
) -> Candidate:
    spec, send, position = journey.journey, sending.send, sending.position
    service = (send.category or spec.category) == "service"
    channel = first_channel(send.channels, profile, service=service)
    at = datetime.fromtimestamp(sending.at_ms / 1000, UTC)
    local = at.astimezone(zone_of(profile))
    release = release_at(send.quiet_hours, local)
    slot = gate_slot(gate, channel, local, daily_cap, service=service)
    data = TriggerData(
        rule=spec.id,
        rule_version=spec.version,
        channel=channel or send.channels[0],  # type: ignore[arg-type]  # a Channel
        template=send.template,
        offer=send.offer,
        reason=[],
        caused_by=[position.instance],
        journey_step=position.step,
    )
    message = Trigger(
        id=sending.send_id, source=SOURCE, type=f"trigger.{spec.id}", time=at,
        subject=customer, shop=shop, data=data,
    )  # fmt: skip
    return Candidate(
        trigger_id=sending.send_id,
        who=f"{shop}:{customer}",
        rule_id=stats_name(spec.id, spec.version, position.step),
        at_ms=sending.at_ms,
        cooldown_ms=0,
        channel=channel or "",
        cap_day=slot.day,
        day_cap=slot.day_cap,
        week_cap=slot.week_cap,
        gate_window_ms=slot.window_ms,
        priority=spec.priority,
        release_at_ms=release,
        payload=message.model_dump_json(exclude_none=True).encode(),
        goal_key=journey.goal.key,
        goal_window_ms=journey.goal_window_ms,
        why=decision_why(data, sending.send_id, sending.at_ms, release),
    )
