"""Scores derived from a profile's raw counters at a moment: RFM, tiers, lifecycle, AIPL, VIP.

Pure functions of stored values and ``as_of``, so that time alone can move a
customer (a buyer becomes at-risk without doing anything) and so that rules,
segments and the API all see the same numbers.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from typing import Final

from rules.shop_config import ShopConfig

DAY_MS: Final = 86_400_000


@dataclass(frozen=True, slots=True)
class Derived:
    recency_score: int
    frequency_score: int
    monetary_score: int
    rfm: str  # e.g. "545"
    value_tier: str  # high, medium, low
    lifecycle: str  # new, active, at-risk, dormant, churned
    aipl: str  # aware, interested, purchased, loyal
    vip_level: str
    days_since_last_order: int | None

    def as_dict(self) -> dict[str, str | int | None]:
        """As the profile document shows it."""
        return {
            "rfm": self.rfm,
            "recency_score": self.recency_score,
            "frequency_score": self.frequency_score,
            "monetary_score": self.monetary_score,
            "value_tier": self.value_tier,
            "lifecycle": self.lifecycle,
            "aipl": self.aipl,
            "vip_level": self.vip_level,
            "days_since_last_order": self.days_since_last_order,
        }


def derive(
    *,
    as_of_ms: int,
    first_seen_ms: int | None,
    last_order_ms: int | None,
    orders: int,
    paid_orders: int,
    spend_cents: int,
    points: int,
    views: int,
    favorites: int,
    cart_adds: int,
    config: ShopConfig,
) -> Derived:
    days_since_order = None if last_order_ms is None else (as_of_ms - last_order_ms) // DAY_MS
    recency_days, frequency_orders, monetary_cents = config.rfm.cuts
    # Recency: ≤ first cut → 5, ≤ second → 4, …, beyond the last → 1.
    recency = 1 if days_since_order is None else 5 - bisect_left(recency_days, days_since_order)
    frequency = 1 + bisect_right(frequency_orders, orders)
    monetary = 1 + bisect_right(monetary_cents, spend_cents)
    total = recency + frequency + monetary
    if total >= config.high_value_min_rfm:
        tier = "high"
    elif total >= config.medium_value_min_rfm:
        tier = "medium"
    else:
        tier = "low"
    return Derived(
        recency_score=recency,
        frequency_score=frequency,
        monetary_score=monetary,
        rfm=f"{recency}{frequency}{monetary}",
        value_tier=tier,
        lifecycle=_lifecycle(as_of_ms, first_seen_ms, days_since_order, config),
        aipl=_aipl(paid_orders, views, favorites, cart_adds, config),
        vip_level=_vip(points, config),
        days_since_last_order=days_since_order,
    )


def _lifecycle(
    as_of_ms: int, first_seen_ms: int | None, days_since_order: int | None, config: ShopConfig
) -> str:
    stages = config.lifecycle
    if days_since_order is None:
        seen_days = 0 if first_seen_ms is None else (as_of_ms - first_seen_ms) // DAY_MS
        return "new" if seen_days <= stages.new_days else "dormant"
    if days_since_order <= stages.active_days:
        return "active"
    if days_since_order <= stages.at_risk_days:
        return "at-risk"
    if days_since_order <= stages.dormant_days:
        return "dormant"
    return "churned"


def _aipl(paid_orders: int, views: int, favorites: int, cart_adds: int, config: ShopConfig) -> str:
    if paid_orders >= config.loyal_orders:
        return "loyal"
    if paid_orders >= 1:
        return "purchased"
    if favorites or cart_adds or views >= 3:
        return "interested"
    return "aware"


def _vip(points: int, config: ShopConfig) -> str:
    level = config.vip_levels[0].name
    for candidate in config.vip_by_points:
        if points >= candidate.min_points:
            level = candidate.name
    return level
