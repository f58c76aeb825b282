"""What a batch, a walk or a schedule pass hands to Redis, and how the answers are counted."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from crmstream import metrics
from handlers.functions.timers import PutOff
from handlers.triggers.decide import Candidate

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
    """What one trigger shard is to do (lua/triggers.lua)."""

    candidates: list[Candidate] = field(default_factory=list)
    # Goal events (who, goal, at, event id): what converts the triggers sent before them.
    goal_ops: list[str | int] = field(default_factory=list)


@dataclass
class BatchWork:
    """What a batch, a walk or a schedule pass is to do: per trigger shard, and per
    partition the entries to put off (functions/timers.py Arm)."""

    shards: defaultdict[str, ShardWork] = field(default_factory=lambda: defaultdict(ShardWork))
    timer_ops: defaultdict[int, list[PutOff]] = field(default_factory=lambda: defaultdict(list))


def count_decisions(
    candidates: Sequence[Candidate], statuses: Sequence[bytes], outcomes: Counter[str]
) -> None:
    """What the guards decided, into ``outcomes`` and crmstream_triggers_total."""
    decided: Counter[tuple[str, str, str]] = Counter()
    for candidate, status in zip(candidates, statuses, strict=True):
        name = status.decode()
        if name == "sent" and candidate.holdout:
            name = "holdout"
        if name == "skipped":  # refused for want of consent
            name = "consent"
            outcomes["no_consent"] += 1
        else:
            outcomes[name] += 1
        decided[candidate.rule_id, candidate.channel or "none", OUTCOME_LABEL[name]] += 1
    for (rule, channel, outcome), count in decided.items():
        metrics.TRIGGERS.labels(rule, channel, outcome).inc(count)
