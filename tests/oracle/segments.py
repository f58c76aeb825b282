"""The reference memberships: the shipped segments (rules/segments/) written out in Python,
over reference profiles (tests/oracle/profiles.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rules.shop_config import ShopConfig
from tests.oracle.profiles import owners, reference_profile

Profile = dict[str, Any]

SEGMENTS: dict[str, Callable[[Profile], bool]] = {
    "dormant": lambda p: p["derived"]["lifecycle"] == "dormant",
    "favorited-never-bought": lambda p: (
        p["counters"]["favorites"] > 0 and p["counters"]["orders"] == 0
    ),
    "frequent-30d": lambda p: p["windows"]["orders_30d"] >= 2,
    "high-value": lambda p: p["derived"]["value_tier"] == "high",
    "north-region": lambda p: p["facts"]["region"] == "华北",
    "vip-gold": lambda p: p["derived"]["vip_level"] in ("gold", "platinum"),
    "vip-list": lambda p: "vip-list" in p["facts"]["tags"],
}


def memberships(
    events: list[dict[str, Any]], as_of: int, config: ShopConfig
) -> dict[str, set[tuple[str, str]]]:
    """Segment → the (shop, customer) in it as of ``as_of``."""
    members: dict[str, set[tuple[str, str]]] = {segment: set() for segment in SEGMENTS}
    for (shop, who), history in owners(events).items():
        profile = reference_profile(shop, who, history, as_of, config)
        for segment, holds in SEGMENTS.items():
            if holds(profile):
                members[segment].add((shop, who))
    return members
