"""Journey statistics as the journey Function and the guards counted them: per shop,
journey and version, the entries, who is held at each step now and who left for what;
per step, what the guards made of its sends and what converted (summed over shards)."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from handlers.functions.triggers import JOURNEY_STATS_PREFIX, SEPARATOR
from handlers.keys import Keys
from handlers.redis_client import RedisClient

_AT: Final = "at:"
_EXIT: Final = "exit:"


@dataclass
class JourneyStats:
    journey: str
    version: int
    entered: int = 0
    at: Counter[str] = field(default_factory=Counter)  # step → held there now
    exited: Counter[str] = field(default_factory=Counter)  # reason → how many
    sends: dict[str, Counter[str]] = field(default_factory=dict)  # step → outcome → count

    def as_dict(self) -> dict[str, object]:
        return {
            "journey": self.journey, "version": self.version, "entered": self.entered,
            "now_at": dict(+self.at), "exited": dict(self.exited),
            "sends": {step: dict(counts) for step, counts in sorted(self.sends.items())},
            "control": self.exited.get("holdout", 0),
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
    sends: defaultdict[str, defaultdict[str, Counter[str]]] = defaultdict(
        lambda: defaultdict(Counter)
    )
    for journeys, rules in shards:
        for name, value in journeys.items():
            its_shop, journey, version, what = _text(name).split(SEPARATOR, 3)
            if shop is not None and its_shop != shop:
                continue
            stats = found.setdefault((journey, int(version)), JourneyStats(journey, int(version)))
            if what == "entered":
                stats.entered += int(value)
            elif what.startswith(_AT):
                stats.at[what[len(_AT) :]] += int(value)
            elif what.startswith(_EXIT):
                stats.exited[what[len(_EXIT) :]] += int(value)
        for name, value in rules.items():
            its_shop, rule, outcome = _text(name).split(SEPARATOR)
            if rule.startswith(JOURNEY_STATS_PREFIX) and (shop is None or its_shop == shop):
                journey, step = rule[len(JOURNEY_STATS_PREFIX) :].split(":", 1)
                sends[journey][step][outcome] += int(value)
    for (journey, _version), stats in found.items():
        # The guards count a step's sends by journey, whatever the version.
        stats.sends = dict(sends.get(journey, {}))
    return [found[key] for key in sorted(found)]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
