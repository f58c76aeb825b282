"""Whether a rule's decision can depend on an event that is still on its way.

A worker reading a partition a little behind puts decisions off until the partition's
event time has passed them (handlers/timing): an event of another topic, written a
moment earlier, may still change what is decided. Some rules cannot be changed so, and
waiting only delays them. This module tells them apart from the rule's definition alone:

- an absence waits for a missing event: always in event-time order;
- a marketing send passes the customer's consent and the shop's daily cap, which other
  rules' sends and other events (a consent withdrawn) change;
- quiet hours fall in the customer's own time zone, which customer events set;
- a condition on profile fields reads what other events change.

An on-event rule with none of these (a service send whose condition reads only its own
event, like a follow-up on a bad review) is decided on arrival, whatever the partition's
lag. Its cooldown, if it has one, is its own, over events of one type, which travel on
one topic partition and so arrive in order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from rules.expressions import ALL
from rules.model import Rule

ON_ARRIVAL: Final = "on arrival"
IN_ORDER: Final = "in event-time order"
BY_THE_CLOCK: Final = "by the clock"
# Why, by code: the English words; the console has them in Chinese too.
REASONS: Final = {
    "absence": "waits to see whether {detail} happens",
    "schedule": "a daily schedule",
    "marketing": "a marketing send: consent and the daily cap change with other events",
    "quiet_hours": "quiet hours follow the customer's time zone, which customer events set",
    "profile": "reads the profile ({detail}), which other events change",
    "own_event": "a service send on its own event alone",
}


@dataclass(frozen=True, slots=True)
class Ordering:
    """A rule's class (ON_ARRIVAL, IN_ORDER or BY_THE_CLOCK), and why: (code of REASONS,
    detail) pairs."""

    on_arrival: bool
    reasons: tuple[tuple[str, str], ...]

    @property
    def name(self) -> str:
        if self.on_arrival:
            return ON_ARRIVAL
        return BY_THE_CLOCK if self.reasons == ((("schedule", ""),)) else IN_ORDER

    def describe(self) -> str:
        said = (REASONS[code].format(detail=detail) for code, detail in self.reasons)
        return f"{self.name}: {'; '.join(said)}"


def ordering(rule: Rule, reads: dict[str, frozenset[str]]) -> Ordering:
    """``reads``: what the rule's condition and occurrence key read, per variable
    (rules/expressions.py Condition.reads, merged)."""
    when = rule.when
    if when.absence is not None:
        return Ordering(on_arrival=False, reasons=(("absence", when.absence.missing),))
    if when.event is None:
        return Ordering(on_arrival=False, reasons=(("schedule", ""),))
    waits = []
    limits = rule.limits
    if not rule.service:
        waits.append(("marketing", ""))
    if limits.quiet_hours is not None:
        waits.append(("quiet_hours", ""))
    profile = reads.get("profile")
    if profile:
        waits.append(("profile", "*" if profile == ALL else ", ".join(sorted(profile))))
    if waits:
        return Ordering(on_arrival=False, reasons=tuple(waits))
    return Ordering(on_arrival=True, reasons=(("own_event", ""),))
