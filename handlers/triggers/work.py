"""What a batch, a walk or a schedule pass hands to Redis, and how the answers are counted."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from crmstream import metrics
from handlers.functions.timers import PutOff
from handlers.functions.triggers import Candidate, Decision, GoalEvent

# What the trigger functions answer → the outcome label of crmstream_triggers_total.
OUTCOME_LABEL = {
    "sent": "sent",
    "held": "held_quiet_hours",
    "holdout": "holdout",
    "cooldown": "suppressed_cooldown",
    "capped": "suppressed_cap",
    "consent": "suppressed_consent",
    "duplicate": "duplicate",
    "expired": "expired",
}


@dataclass
class ShardWork:
    """What one trigger shard is to do (functions/triggers.py Emit and Goals)."""

    candidates: list[Candidate] = field(default_factory=list)
    # What converts the triggers sent before them.
    goal_events: list[GoalEvent] = field(default_factory=list)


@dataclass
class BatchWork:
    """What a batch, a walk or a schedule pass is to do: per trigger shard, and per
    partition the entries to put off (functions/timers.py Arm)."""

    shards: defaultdict[str, ShardWork] = field(default_factory=lambda: defaultdict(ShardWork))
    timer_ops: defaultdict[int, list[PutOff]] = field(default_factory=lambda: defaultdict(list))


def count_decisions(
    candidates: Sequence[Candidate], decisions: Sequence[Decision], outcomes: Counter[str]
) -> None:
    """What the guards decided, into ``outcomes`` and crmstream_triggers_total."""
    decided: Counter[tuple[str, str, str]] = Counter()
    for candidate, decision in zip(candidates, decisions, strict=True):
        name = decision.value
        if decision is Decision.SENT and candidate.holdout:
            name = "holdout"
        if decision is Decision.SKIPPED:  # refused for want of consent
            name = "consent"
            outcomes["no_consent"] += 1
        else:
            outcomes[name] += 1
        decided[candidate.rule_id, candidate.channel or "none", OUTCOME_LABEL[name]] += 1
    for (rule, channel, outcome), count in decided.items():
        metrics.TRIGGERS.labels(rule, channel, outcome).inc(count)
