"""The reference memberships: the shipped segments (rules/segments/) written out in Python
from their descriptions, over reference profiles (tests/oracle/profiles.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.oracle.derived import AT_RISK_DAYS, DORMANT_DAYS, HIGH_FROM, VIP_FROM
from tests.oracle.history import owners
from tests.oracle.profiles import reference_profile

Profile = dict[str, Any]
GOLD_FROM = dict(VIP_FROM)["gold"]


def _dormant(profile: Profile) -> bool:
    """Bought before, but nothing for a while: days since the last order past the shop's
    at-risk line (and not yet past the dormant one, beyond which a customer is churned)."""
    days = profile["derived"]["days_since_last_order"]
    return days is not None and AT_RISK_DAYS < days <= DORMANT_DAYS


def _high_value(profile: Profile) -> bool:
    """Recent, frequent and big spenders: R+F+M at the high tier's line or above."""
    scores = profile["derived"]
    total: int = scores["recency_score"] + scores["frequency_score"] + scores["monetary_score"]
    return total >= HIGH_FROM


SEGMENTS: dict[str, Callable[[Profile], bool]] = {
    "dormant": _dormant,
    "favorited-never-bought": lambda p: (
        p["counters"]["favorites"] > 0 and p["counters"]["orders"] == 0
    ),
    "frequent-30d": lambda p: p["windows"]["orders_30d"] >= 2,
    "high-value": _high_value,
    "north-region": lambda p: p["facts"]["region"] == "华北",
    "vip-gold": lambda p: p["counters"]["points"] >= GOLD_FROM,
    "vip-list": lambda p: "vip-list" in p["facts"]["tags"],
}


def memberships(events: list[dict[str, Any]], as_of: int) -> dict[str, set[tuple[str, str]]]:
    """Segment → the (shop, customer) in it as of ``as_of``."""
    members: dict[str, set[tuple[str, str]]] = {segment: set() for segment in SEGMENTS}
    for (shop, who), history in owners(events).items():
        profile = reference_profile(shop, who, history, as_of)
        for segment, holds in SEGMENTS.items():
            if holds(profile):
                members[segment].add((shop, who))
    return members
