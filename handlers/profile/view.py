"""The profile as conditions read it, built straight from a customer's stored keys.

``profile_view(build_profile(...))`` (rules/activation.py) gives the same document: there,
every time is first written as ISO text and parsed back into a timestamp, and every amount
written in the major unit and parsed back into cents. Here both come from the integers
Redis holds. Rules, segments and journeys build one per customer and moment they decide
for, which made the round trip a tenth of the worker's time.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import UTC, datetime
from typing import Any, Final

from handlers.profile.read import (
    COUNTERS,
    RECENCY,
    SECTIONS,
    SectionBuilder,
    Stored,
    cart_lines,
    window_totals,
)
from rules.activation import CENTS_SUFFIX
from rules.shop_config import ShopConfig


def profile_as_read(  # noqa: PLR0917 -- one customer, as of one moment
    shop: str,
    who: str,
    as_of: int,
    stored: Stored,
    config: ShopConfig,
    sections: Collection[str] = SECTIONS,
) -> dict[str, Any]:
    """The profile as of ``as_of`` as conditions see it: only ``sections`` of it."""
    builder = SectionBuilder(stored, config, as_of)
    view: dict[str, Any] = {"shop": shop, "customer": who, "as_of": _moment(as_of)}
    for section in SECTIONS:
        if section in sections:
            view[section] = _SECTION_VIEWS[section](builder)
    return view


def _moment(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC)


def _counters(built: SectionBuilder) -> dict[str, Any]:
    reviews, surveys = built.number("reviews"), built.number("surveys")
    return {
        **{name: built.number(name) for name in COUNTERS},
        "spend" + CENTS_SUFFIX: built.number("spend"),
        "average_rating": round(built.number("rating_sum") / reviews, 2) if reviews else None,
        "csat": round(built.number("satisfied") / surveys, 4) if surveys else None,
    }


def _recency(built: SectionBuilder) -> dict[str, Any]:
    return {name: _moment(built.moment(name)) for name in RECENCY}


def _windows(built: SectionBuilder) -> dict[str, Any]:
    return {
        name + CENTS_SUFFIX if name.startswith("spend") else name: total
        for name, total in window_totals(built.stored.buckets, built.as_of).items()
    }


def _cart(built: SectionBuilder) -> dict[str, Any]:
    lines = cart_lines(built.stored.cart)
    return {
        "items": [
            {
                "item_id": line["item_id"],
                "qty": line["qty"],
                "price" + CENTS_SUFFIX: line["price_cents"],
                "category": line["category"],
            }
            for line in lines
        ],
        "count": sum(line["qty"] for line in lines),
        "value" + CENTS_SUFFIX: sum(line["qty"] * line["price_cents"] for line in lines),
    }


_SECTION_VIEWS: Final[dict[str, Callable[[SectionBuilder], Any]]] = {
    "facts": SectionBuilder.facts,
    "counters": _counters,
    "recency": _recency,
    "windows": _windows,
    "cart": _cart,
    "affinity": SectionBuilder.affinity,
    "recently_viewed": SectionBuilder.recently_viewed,
    "favorites": SectionBuilder.favorites,
    "derived": SectionBuilder.derived,
}
