"""The reference: every profile field computed the plain way, from the whole event history.

No buckets, no Lua, no incremental state: each field is what its definition says
(docs/DESIGN.md §2, "The live profile") over the events a customer owns, for a shop on
the default settings. Nothing is imported from the engine. The engine must agree with
it field by field.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from decimal import Decimal
from typing import Any

import orjson

from tests.oracle.derived import CURRENCY, TIMEZONE, derived, points
from tests.oracle.history import EPOCH, ms, owners

HOUR_MS = 3_600_000
DAY_MS = 86_400_000
WEIGHTS = {"view": 1, "favorite": 3, "cart": 5, "order": 10}
RECENT_VIEWS = 20
FAVORITES = 100


def iso(at_ms: int | None) -> str | None:
    """UTC, with microseconds only when there are any, as ``datetime.isoformat`` writes."""
    if at_ms is None:
        return None
    return (EPOCH + timedelta(milliseconds=at_ms)).isoformat().replace("+00:00", "Z")


def money(amount_cents: int) -> str:
    sign = "-" if amount_cents < 0 else ""
    whole, cents_left = divmod(abs(amount_cents), 100)
    return f"{sign}{whole}.{cents_left:02d}"


def cents(amount: Any) -> int:
    return int(Decimal(str(amount)) * 100)


def _window(times_values: list[tuple[int, int]], as_of: int, size: int, count: int) -> int:
    newest = as_of // size
    return sum(value for at, value in times_values if newest - count < at // size <= newest)


def _top(latest: dict[str, int], limit: int) -> list[str]:
    ranked = sorted(latest.items(), key=lambda pair: (pair[1], pair[0]), reverse=True)
    return [item for item, _ in ranked[:limit]]


def reference_profile(  # noqa: PLR0912, PLR0915 -- one plain pass over the history, on purpose
    shop: str, who: str, events: list[dict[str, Any]], as_of: int
) -> dict[str, Any]:
    counters: dict[str, int] = defaultdict(int)
    spend = 0
    rating_sum = satisfied = 0
    times = [ms(e["time"]) for e in events]
    last: dict[str, int] = {}
    facts: dict[str, Any] = {}
    registered: list[int] = []
    views: list[tuple[int, int]] = []
    cart_adds: list[tuple[int, int]] = []
    orders: list[tuple[int, int]] = []
    spends: list[tuple[int, int]] = []
    affinity: dict[str, int] = defaultdict(int)
    viewed: dict[str, int] = {}
    favorited: dict[str, int] = {}
    cart_entries: dict[str, list[tuple[int, int]]] = defaultdict(list)
    cart_price: dict[str, tuple[int, int, str]] = {}
    taken: dict[str, int] = defaultdict(int)

    def latest(name: str, at: int) -> None:
        last[name] = max(last.get(name, at), at)

    for event, at in zip(events, times, strict=True):
        kind, data = event["type"], event["data"]
        if kind == "item.viewed":
            counters["views"] += 1
            latest("last_view", at)
            views.append((at, 1))
            affinity[data["category"]] += WEIGHTS["view"]
            viewed[data["item_id"]] = max(viewed.get(data["item_id"], at), at)
        elif kind == "item.favorited":
            counters["favorites"] += 1
            affinity[data["category"]] += WEIGHTS["favorite"]
            favorited[data["item_id"]] = max(favorited.get(data["item_id"], at), at)
        elif kind == "search.performed":
            counters["searches"] += 1
        elif kind == "cart.item_added":
            counters["cart_adds"] += 1
            latest("last_cart", at)
            cart_adds.append((at, 1))
            affinity[data["category"]] += WEIGHTS["cart"]
            cart_entries[data["item_id"]].append((at, data["qty"]))
            price = cents(data["price"])
            if data["item_id"] not in cart_price or at >= cart_price[data["item_id"]][0]:
                cart_price[data["item_id"]] = (at, price, data["category"])
        elif kind == "order.placed":
            counters["orders"] += 1
            counters["units"] += sum(line["qty"] for line in data["items"])
            latest("last_order", at)
            orders.append((at, 1))
            for line in data["items"]:
                affinity[line["category"]] += WEIGHTS["order"]
                taken[line["item_id"]] = max(taken[line["item_id"]], at)
        elif kind == "order.paid":
            paid = cents(data["total"])
            counters["paid_orders"] += 1
            counters["points"] += points(paid)
            spend += paid
            spends.append((at, paid))
            latest("last_paid", at)
        elif kind == "order.refunded":
            back = cents(data["amount"])
            counters["refunds"] += 1
            counters["points"] -= points(back)
            spend -= back
            spends.append((at, -back))
        elif kind == "order.cancelled":
            counters["cancels"] += 1
        elif kind == "order.shipped":
            latest("last_shipped", at)
        elif kind == "order.delivered":
            latest("last_delivered", at)
        elif kind == "review.posted":
            counters["reviews"] += 1
            rating_sum += data["rating"]
            counters["complaints"] += data["rating"] <= 2
            latest("last_review", at)
        elif kind == "survey.answered":
            counters["surveys"] += 1
            satisfied += data["score"] >= (4 if data.get("scale", 5) == 5 else 8)
        elif kind in ("customer.registered", "customer.updated"):
            if kind == "customer.registered":
                registered.append(at)
            facts.update({k: v for k, v in data.items() if v is not None})

    lines: list[dict[str, Any]] = []
    cart_value = 0
    for item in sorted(cart_entries):
        qty = sum(q for at, q in cart_entries[item] if at > taken[item])
        if qty > 0:
            _, price, category = cart_price[item]
            lines.append({"item_id": item, "qty": qty, "price": money(price), "category": category})
            cart_value += qty * price
    consents = facts.get("consents", {})
    return {
        "shop": shop,
        "customer": who,
        "as_of": iso(as_of),
        "facts": {
            "birthday": facts.get("birthday"),
            "gender": facts.get("gender"),
            "region": facts.get("region"),
            "city": facts.get("city"),
            "member_level": facts.get("member_level"),
            "timezone": facts.get("timezone", TIMEZONE),
            "tags": sorted(set(facts.get("tags", []))),
            "consents": {c: consents.get(c) is True for c in ("marketing", "sms", "email", "push")},
            "phone_hash": facts.get("phone_hash"),
            "email_hash": facts.get("email_hash"),
            "currency": CURRENCY,
        },
        "counters": {
            **{
                name: counters[name]
                for name in (
                    "views",
                    "favorites",
                    "cart_adds",
                    "searches",
                    "orders",
                    "units",
                    "paid_orders",
                    "refunds",
                    "cancels",
                    "reviews",
                    "complaints",
                    "surveys",
                    "points",
                )
            },
            "spend": money(spend),
            "average_rating": round(rating_sum / counters["reviews"], 2)
            if counters["reviews"]
            else None,
            "csat": round(satisfied / counters["surveys"], 4) if counters["surveys"] else None,
        },
        "recency": {
            "first_seen": iso(min(times)),
            "last_seen": iso(max(times)),
            **{
                name: iso(last.get(name))
                for name in (
                    "last_view",
                    "last_cart",
                    "last_order",
                    "last_paid",
                    "last_shipped",
                    "last_delivered",
                    "last_review",
                )
            },
            "registered_at": iso(min(registered)) if registered else None,
        },
        "windows": {
            "views_24h": _window(views, as_of, HOUR_MS, 24),
            "views_7d": _window(views, as_of, DAY_MS, 7),
            "cart_adds_24h": _window(cart_adds, as_of, HOUR_MS, 24),
            "orders_30d": _window(orders, as_of, DAY_MS, 30),
            "orders_90d": _window(orders, as_of, DAY_MS, 90),
            "spend_90d": money(_window(spends, as_of, DAY_MS, 90)),
            "spend_365d": money(_window(spends, as_of, DAY_MS, 365)),
        },
        "cart": {
            "items": lines,
            "count": sum(line["qty"] for line in lines),
            "value": money(cart_value),
        },
        "affinity": dict(sorted(affinity.items(), key=lambda kv: (-kv[1], kv[0]))),
        "recently_viewed": _top(viewed, RECENT_VIEWS),
        "favorites": _top(favorited, FAVORITES),
        "derived": derived(as_of, min(times), last.get("last_order"), counters, spend),
    }


def load(path_bytes: bytes) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path_bytes.splitlines() if line.strip()]


async def mismatches(
    reader: Any, events: list[dict[str, Any]], limit: int = 5
) -> tuple[int, list[str]]:
    """(profiles compared, the first differences found) between Redis and the reference."""
    as_of = max(ms(event["time"]) for event in events)
    owned = owners(events)
    found: list[str] = []
    for (shop, who), history in owned.items():
        expected = reference_profile(shop, who, history, as_of)
        actual = await reader.read(shop, who, as_of)
        if actual is None:
            found.append(f"{shop}/{who}: no profile")
        elif actual != expected:
            fields = [name for name in expected if actual.get(name) != expected[name]]
            found.append(f"{shop}/{who}: {fields[0]}: {actual[fields[0]]} != {expected[fields[0]]}")
        if len(found) >= limit:
            break
    return len(owned), found
