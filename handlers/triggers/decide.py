"""From "this rule matched" to a trigger ready for the outbox: the guards that need no store.

Consent and the channel are chosen here from the profile; quiet hours, the cap's
local day and the holdout share are worked out here too, because they depend only
on the customer's timezone and ids. What needs shared state (dedup, cooldown,
cap counts) is decided atomically in Redis (functions/emit.lua).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson

from handlers.functions.triggers import Candidate
from rules.loader import CompiledRule
from rules.model import QuietHours, parse_clock
from rules.send_gate import NO_SLOT, SendGate, Slot, slot_for
from schemas.ids import uuid5_text
from schemas.triggers import MatchedCondition, Trigger, TriggerData

# Trigger ids are UUIDv5 in this namespace, of rule, version, shop, customer, occurrence.
TRIGGER_NAMESPACE: Final = uuid.UUID("6f1d7c9e-2b1a-5d0e-9a3c-63726d747267")
_CHANNEL_CONSENT: Final = {"sms": "sms", "email": "email", "push": "push"}
_FALLBACK_ZONE: Final = ZoneInfo("Asia/Shanghai")


def trigger_id(rule: CompiledRule, shop: str, customer: str, occurrence: str) -> str:
    name = "\x1f".join((rule.rule.id, str(rule.rule.version), shop, customer, occurrence))
    return uuid5_text(TRIGGER_NAMESPACE, name)


def in_holdout(rule_id: str, shop: str, customer: str, share: float) -> bool:
    """Deterministic: the same customer is in (or out of) a rule's holdout on every worker."""
    if share <= 0:
        return False
    digest = hashlib.blake2b(f"{rule_id}\x1f{shop}\x1f{customer}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 < share


def zone_of(profile: dict[str, Any]) -> ZoneInfo:
    try:
        return ZoneInfo(profile["facts"].get("timezone") or "Asia/Shanghai")
    except (ZoneInfoNotFoundError, ValueError):
        return _FALLBACK_ZONE


def channel_for(rule: CompiledRule, profile: dict[str, Any]) -> str | None:
    """The first of the rule's channels the customer may be reached on, or None."""
    return first_channel(rule.rule.then.channels, profile, service=rule.rule.service)


def first_channel(channels: Sequence[str], profile: dict[str, Any], *, service: bool) -> str | None:
    """The first of ``channels`` the customer may be reached on, or None; a service
    message needs no marketing consent."""
    if service:
        return channels[0]
    consents = profile["facts"]["consents"]
    if not consents.get("marketing"):
        return None
    for channel in channels:
        needed = _CHANNEL_CONSENT.get(channel)
        if needed is None or consents.get(needed):
            return channel
    return None


def gate_slot(
    gate: SendGate, channel: str | None, local: datetime, daily_cap: int, *, service: bool
) -> Slot:
    """What a send asks of the shop's send gate: nothing for a service message, or one
    consent refused (it is not sent)."""
    if service or channel is None:
        return NO_SLOT
    return slot_for(gate, channel, local.date(), daily_cap)


def release_at(quiet: QuietHours | None, at: datetime) -> int:
    """When a trigger at local time ``at`` may go out: 0 if now, else the end of quiet hours."""
    if quiet is None:
        return 0
    start, end = parse_clock(quiet.start), parse_clock(quiet.end)
    clock = at.timetz().replace(tzinfo=None)
    overnight = start > end
    quiet_now = (clock >= start or clock < end) if overnight else (start <= clock < end)
    if not quiet_now:
        return 0
    day = at.date() if (not overnight or clock < end) else at.date() + timedelta(days=1)
    opens = datetime.combine(day, end, tzinfo=at.tzinfo)
    return int(opens.timestamp() * 1000)


def build(
    rule: CompiledRule,
    *,
    shop: str,
    customer: str,
    occurrence: str,
    at_ms: int,
    profile: dict[str, Any],
    reason: list[MatchedCondition],
    caused_by: list[str],
    items: list[str],
    gate: SendGate,
    daily_cap: int,
) -> Candidate:
    spec = rule.rule
    tid = trigger_id(rule, shop, customer, occurrence)
    channel = channel_for(rule, profile)
    local = datetime.fromtimestamp(at_ms / 1000, UTC).astimezone(zone_of(profile))
    holdout = in_holdout(spec.id, shop, customer, spec.limits.holdout)
    release = release_at(spec.limits.quiet_hours, local)
    slot = gate_slot(gate, channel, local, daily_cap, service=spec.service)
    message = Trigger(
        id=tid,
        type=spec.trigger_type,
        time=datetime.fromtimestamp(at_ms / 1000, UTC),
        subject=customer,
        shop=shop,
        data=TriggerData(
            rule=spec.id,
            rule_version=spec.version,
            channel=channel or spec.then.channels[0],  # type: ignore[arg-type]  # a Channel
            template=spec.then.template,
            offer=spec.then.offer,
            items=items[:50],
            reason=reason,
            holdout=holdout,
            caused_by=caused_by[:100],
        ),
    )
    return Candidate(
        trigger_id=tid,
        who=f"{shop}:{customer}",
        rule_id=spec.id,
        at_ms=at_ms,
        cooldown_ms=spec.limits.cooldown_s * 1000,
        channel=channel or "",
        cap_day=slot.day,
        day_cap=slot.day_cap,
        week_cap=slot.week_cap,
        gate_window_ms=slot.window_ms,
        priority=spec.priority,
        release_at_ms=release,
        payload=message.model_dump_json(exclude_none=True).encode(),
        holdout=holdout,
        goal_key=rule.goal.key,
        goal_window_ms=spec.goal.within_s * 1000,
        expires_at_ms=at_ms + spec.max_age_s * 1000 if spec.max_age_s else 0,
        why=decision_why(message.data, tid, at_ms, release),
    )


def decision_why(data: TriggerData, tid: str, at_ms: int, release_at_ms: int = 0) -> bytes:
    """What the decision log keeps of a decision besides its outcome: the rule, the
    occurrence's time, the trigger, its causes, the reason with the values read, and when
    quiet hours end if it falls in them."""
    why: dict[str, object] = {
        "rule": data.rule,
        "version": data.rule_version,
        "at": at_ms,
        "trigger_id": tid,
        "channel": data.channel,
        "caused_by": data.caused_by[:5],
        "reason": [part.model_dump(mode="json") for part in data.reason],
    }
    if release_at_ms:
        why["release_at"] = release_at_ms
    return orjson.dumps(why)
