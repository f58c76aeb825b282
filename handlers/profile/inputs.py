"""What each part of the profile document is built from (read.py's builder): fields of the
profile hash, window buckets of one kind, or another of the customer's keys.

A batch that changed none of what a condition's paths are built from cannot have changed
what the condition sees of the profile; only the clock can, and the timed segments'
recheck follows the clock. So segments are evaluated again only for the customers whose
batch changed one of their inputs (functions/profile.py ApplyBatch ``watched``).
tests/unit/test_profile_inputs.py holds this table to the builder: changing anything a
path is not said to be built from leaves it as it was.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from handlers.functions.profile import WATCHED_KEYS, WATCHED_WINDOWS, Watch
from handlers.profile.read import COUNTERS, FACTS, RECENCY, WINDOWS

Inputs = frozenset[str]

_CONSENTS: Final = ("marketing", "sms", "email", "push")

# section → field of the document → what it is built from. A section built from one key
# as a whole is given under "*".
BUILT_FROM: Final[Mapping[str, Mapping[str, Inputs]]] = {
    "facts": {
        **{name: frozenset({name}) for name in FACTS},
        "timezone": frozenset({"timezone"}),
        "tags": frozenset({"tags"}),
        "consents": frozenset(f"consent_{channel}" for channel in _CONSENTS),
        "phone_hash": frozenset({"phone_hash"}),
        "email_hash": frozenset({"email_hash"}),
        "currency": frozenset(),  # the shop's, not the customer's
    },
    "counters": {
        **{name: frozenset({name}) for name in COUNTERS},
        "spend": frozenset({"spend"}),
        "average_rating": frozenset({"reviews", "rating_sum"}),
        "csat": frozenset({"surveys", "satisfied"}),
    },
    "recency": {name: frozenset({name}) for name in RECENCY},
    "windows": {
        name: frozenset({WATCHED_WINDOWS[bucket]}) for name, bucket, _size, _count in WINDOWS
    },
    "cart": {"*": frozenset({WATCHED_KEYS["cart"]})},
    "affinity": {"*": frozenset({WATCHED_KEYS["affinity"]})},
    "recently_viewed": {"*": frozenset({WATCHED_KEYS["recent"]})},
    "favorites": {"*": frozenset({WATCHED_KEYS["favorites"]})},
    "derived": {
        "recency_score": frozenset({"last_order"}),
        "days_since_last_order": frozenset({"last_order"}),
        "frequency_score": frozenset({"orders"}),
        "monetary_score": frozenset({"spend"}),
        "rfm": frozenset({"last_order", "orders", "spend"}),
        "value_tier": frozenset({"last_order", "orders", "spend"}),
        "lifecycle": frozenset({"first_seen", "last_order"}),
        "aipl": frozenset({"paid_orders", "views", "favorites", "cart_adds"}),
        "vip_level": frozenset({"points"}),
    },
}


def built_from(paths: Mapping[str, frozenset[str]] | None) -> Inputs | None:
    """What the profile paths a condition reads (rules/expressions.py Condition.paths) are
    built from; None for anything (a path not in the table, or the profile read whole)."""
    if paths is None:
        return None
    inputs: set[str] = set()
    for section, fields in paths.items():
        table = BUILT_FROM.get(section)
        if table is None:
            return None
        if "*" in table:
            inputs |= table["*"]
            continue
        for name in table if "*" in fields else fields:
            found = table.get(name)
            if found is None:
                return None
            inputs |= found
    return frozenset(inputs)


def watched_text(inputs: Inputs | None) -> str:
    """``inputs`` as ApplyBatch's ``watched`` argument."""
    return Watch.ALL.value if inputs is None else ",".join(sorted(inputs))
