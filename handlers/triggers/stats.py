"""Rule statistics as counted by the trigger functions: per shop and rule, summed over shards."""

from __future__ import annotations

from collections import Counter, defaultdict

from handlers.functions.triggers import JOURNEY_STATS_PREFIX
from handlers.keys import Keys
from handlers.redis_client import RedisClient
from rules.lift import RuleStats

_SEP = "\x1f"


async def read_rule_stats(
    client: RedisClient, keys: Keys, shop: str | None = None
) -> list[RuleStats]:
    """Every rule with counts, in id order; only ``shop``'s when given."""
    pipe = client.pipeline(transaction=False)
    for base in keys.trigger_shards():
        pipe.hgetall(keys.rule_stats(base))
    by_rule: defaultdict[str, Counter[str]] = defaultdict(Counter)
    for reply in await pipe.execute():
        for field, value in reply.items():
            its_shop, rule, outcome = field.decode().split(_SEP)
            if rule.startswith(JOURNEY_STATS_PREFIX):
                continue  # a journey step's sends: the journeys' stats (handlers/journeys)
            if shop is None or its_shop == shop:
                by_rule[rule][outcome] += int(value)
    return [RuleStats(rule, dict(counts)) for rule, counts in sorted(by_rule.items())]
