"""Journey statistics as the journey Function and the guards counted them: per shop,
journey and version, the entries, how many came to each wait and are held there now, who
left for what; per step, what the guards made of its sends and what converted; and the
goal: instances that reached it, against those on the holdout path (summed over shards)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from handlers.functions.triggers import JOURNEY_ENTERED, JOURNEY_STATS_PREFIX, SEPARATOR
from handlers.keys import Keys
from handlers.redis_client import RedisClient
from rules.lift import CONVERTED, CONVERTED_HOLDOUT, HOLDOUT, two_proportions

# What a journey move counts (journeys.lua adds each to "<shop> US <journey> US <version>
# US <name>", or takes one off for "-<name>"), written and read here only.
ENTERED: Final = "entered"
_AT: Final = "at:"  # held at a step now (taken off when the instance moves on)
_REACHED: Final = "reached:"  # came to a wait: the funnel
_EXIT: Final = "exit:"


def counted_for(before_step: str | None, held_at: str | None, *, held_before: bool) -> list[str]:
    """The counts a stop moves: ``before_step`` None for an instance entering; the step it
    is held at now (None: it goes on, or leaves); whether it was held where it was."""
    counted = [ENTERED] if before_step is None else []
    if before_step is not None and held_before:
        counted.append(f"-{_AT}{before_step}")
    if held_at is not None:
        counted.append(f"{_AT}{held_at}")
        if before_step != held_at:
            counted.append(f"{_REACHED}{held_at}")
    return counted


def exit_count(reason: str) -> str:
    return f"{_EXIT}{reason}"


@dataclass
class JourneyStats:
    journey: str
    version: int
    entered: int = 0
    at: Counter[str] = field(default_factory=Counter)  # step → held there now
    reached: Counter[str] = field(default_factory=Counter)  # wait step → came to it
    exited: Counter[str] = field(default_factory=Counter)  # reason → how many
    sends: dict[str, Counter[str]] = field(default_factory=dict)  # step → outcome → count
    # The instances' goal: entered (treated), holdout, converted, converted_holdout.
    goal: Counter[str] = field(default_factory=Counter)

    @property
    def now_in(self) -> int:
        """Held somewhere in the journey now."""
        return sum(n for n in self.at.values() if n > 0)

    @property
    def sent(self) -> int:
        """Every send of every step, whatever the guards made of it (not conversions)."""
        return sum(
            n for outcomes in self.sends.values() for o, n in outcomes.items()
            if o not in (CONVERTED, CONVERTED_HOLDOUT)
        )  # fmt: skip

    def goal_dict(self) -> dict[str, object]:
        goal = self.goal
        lift = two_proportions(
            goal[CONVERTED], goal[JOURNEY_ENTERED], goal[CONVERTED_HOLDOUT], goal[HOLDOUT]
        )
        return {
            "treated": goal[JOURNEY_ENTERED], "reached": goal[CONVERTED],
            "control": goal[HOLDOUT], "control_reached": goal[CONVERTED_HOLDOUT],
            "rate": lift.rate_sent, "control_rate": lift.rate_holdout, "lift": lift.lift,
            "ci_low": lift.ci_low, "ci_high": lift.ci_high, "p_value": lift.p_value,
        }  # fmt: skip

    def as_dict(self) -> dict[str, object]:
        return {
            "journey": self.journey, "version": self.version, "entered": self.entered,
            "now_at": dict(+self.at), "reached": dict(+self.reached), "exited": dict(self.exited),
            "sends": {step: dict(counts) for step, counts in sorted(self.sends.items())},
            "control": self.exited.get("holdout", 0), "goal": self.goal_dict(),
        }  # fmt: skip


async def read_journey_stats(
    client: RedisClient, keys: Keys, shop: str | None = None
) -> list[JourneyStats]:
    """Every journey version with counts, in id and version order; ``shop``'s if given."""
    pipe = client.pipeline(transaction=False)
    for base in keys.trigger_shards():
        pipe.hgetall(keys.journey_stats(base))
        pipe.hgetall(keys.rule_stats(base))
    replies = await pipe.execute()
    return journey_stats_of(list(zip(replies[::2], replies[1::2], strict=True)), shop)


Hash = Mapping[bytes | str, bytes | str]


def journey_stats_of(shards: Sequence[tuple[Hash, Hash]], shop: str | None) -> list[JourneyStats]:
    """From each shard's journey stats and rule stats hashes (a sync caller reads them
    itself: the demo)."""
    found: dict[tuple[str, int], JourneyStats] = {}

    def of(journey: str, version: int) -> JourneyStats:
        return found.setdefault((journey, version), JourneyStats(journey, version))

    for journeys, rules in shards:
        for name, value in journeys.items():
            its_shop, journey, version, what = _text(name).split(SEPARATOR, 3)
            if shop is not None and its_shop != shop:
                continue
            stats = of(journey, int(version))
            if what == ENTERED:
                stats.entered += int(value)
            elif what.startswith(_AT):
                stats.at[what[len(_AT) :]] += int(value)
            elif what.startswith(_REACHED):
                stats.reached[what[len(_REACHED) :]] += int(value)
            elif what.startswith(_EXIT):
                stats.exited[what[len(_EXIT) :]] += int(value)
        for name, value in rules.items():
            its_shop, rule, outcome = _text(name).split(SEPARATOR)
            if not rule.startswith(JOURNEY_STATS_PREFIX) or (shop is not None and its_shop != shop):
                continue
            parts = rule[len(JOURNEY_STATS_PREFIX) :].split(":")
            if len(parts) < 2 or not parts[1].isdigit():
                continue  # not a journey's count
            stats = of(parts[0], int(parts[1]))
            if len(parts) == 2:
                stats.goal[outcome] += int(value)
            else:
                stats.sends.setdefault(parts[2], Counter())[outcome] += int(value)
    return [found[key] for key in sorted(found)]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
