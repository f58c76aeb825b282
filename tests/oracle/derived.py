"""The derived scores of a profile, written out from their documented definitions
(docs/DESIGN.md §2, "The live profile"), with the default shop's numbers as literals.

Nothing is imported from the engine: the numbers below are copied from
rules/shops/default.yaml, where a merchant reads them, so that a change there that the
engine follows and the documentation does not shows up as a difference.
"""

from __future__ import annotations

from typing import Any, Final

DAY_MS: Final = 86_400_000

# rules/shops/default.yaml: timezone, currency, points_per_unit (a point per yuan paid).
TIMEZONE: Final = "Asia/Shanghai"
CURRENCY: Final = "CNY"
CENTS_PER_POINT: Final = 100

# rules/shops/default.yaml, rfm: days since the last order ≤30 → R5, ≤60 → R4, ≤90 → R3,
# ≤180 → R2, beyond (or never) → R1.
RECENCY_AT_MOST: Final = ((30, 5), (60, 4), (90, 3), (180, 2))
# Orders placed ≥8 → F5, ≥5 → F4, ≥3 → F3, ≥2 → F2, else F1.
FREQUENCY_AT_LEAST: Final = ((8, 5), (5, 4), (3, 3), (2, 2))
# Net spend in yuan ≥5000 → M5, ≥2000 → M4, ≥500 → M3, ≥100 → M2, else M1.
MONETARY_AT_LEAST: Final = ((5000, 5), (2000, 4), (500, 3), (100, 2))
# high_value_min_rfm, medium_value_min_rfm.
HIGH_FROM: Final = 12
MEDIUM_FROM: Final = 8
# lifecycle: new_days, active_days, at_risk_days, dormant_days.
NEW_DAYS, ACTIVE_DAYS, AT_RISK_DAYS, DORMANT_DAYS = 30, 30, 90, 180
# loyal_orders: paid orders that make a customer loyal (AIPL L).
LOYAL_FROM: Final = 3
# AIPL I without a favourite or a cart add (docs/DESIGN.md §2).
VIEWS_OF_INTEREST: Final = 3
# vip_levels, highest first.
VIP_FROM: Final = (("platinum", 20_000), ("gold", 5_000), ("silver", 1_000))
VIP_FLOOR: Final = "regular"


def points(cents: int) -> int:
    """Points for one payment or refund: whole yuan, rounded down."""
    return cents // CENTS_PER_POINT


def _recency(days: int | None) -> int:
    if days is None:
        return 1
    return next((score for limit, score in RECENCY_AT_MOST if days <= limit), 1)


def _at_least(value: int, ladder: tuple[tuple[int, int], ...], unit: int = 1) -> int:
    return next((score for floor, score in ladder if value >= floor * unit), 1)


def _lifecycle(days_since_order: int | None, days_since_first_seen: int) -> str:
    if days_since_order is None:
        return "new" if days_since_first_seen <= NEW_DAYS else "dormant"
    if days_since_order <= ACTIVE_DAYS:
        return "active"
    if days_since_order <= AT_RISK_DAYS:
        return "at-risk"
    if days_since_order <= DORMANT_DAYS:
        return "dormant"
    return "churned"


def _aipl(paid_orders: int, views: int, favorites: int, cart_adds: int) -> str:
    if paid_orders >= LOYAL_FROM:
        return "loyal"
    if paid_orders >= 1:
        return "purchased"
    if favorites > 0 or cart_adds > 0 or views >= VIEWS_OF_INTEREST:
        return "interested"
    return "aware"


def _vip(total_points: int) -> str:
    return next((name for name, floor in VIP_FROM if total_points >= floor), VIP_FLOOR)


def derived(
    as_of: int, first_seen: int, last_order: int | None, counters: dict[str, int], spend: int
) -> dict[str, Any]:
    """The ``derived`` section as of ``as_of`` (epoch ms); ``spend`` is net, in cents."""
    days = None if last_order is None else (as_of - last_order) // DAY_MS
    recency = _recency(days)
    frequency = _at_least(counters["orders"], FREQUENCY_AT_LEAST)
    monetary = _at_least(spend, MONETARY_AT_LEAST, unit=100)  # yuan, in cents
    total = recency + frequency + monetary
    tier = "high" if total >= HIGH_FROM else "medium" if total >= MEDIUM_FROM else "low"
    return {
        "rfm": f"{recency}{frequency}{monetary}",
        "recency_score": recency,
        "frequency_score": frequency,
        "monetary_score": monetary,
        "value_tier": tier,
        "lifecycle": _lifecycle(days, (as_of - first_seen) // DAY_MS),
        "aipl": _aipl(
            counters["paid_orders"], counters["views"], counters["favorites"], counters["cart_adds"]
        ),
        "vip_level": _vip(counters["points"]),
        "days_since_last_order": days,
    }
