"""Reading a profile back: one round trip for all of a customer's keys, windows as of a moment."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import orjson
import redis.asyncio

from handlers.keys import Keys
from handlers.shop_configs import ShopConfigs
from rules.derived import derive
from rules.shop_config import ShopConfig

HOUR_MS: Final = 3_600_000
DAY_MS: Final = 86_400_000
Profile = dict[str, Any]

RECENCY: Final = (
    "first_seen", "last_seen", "last_view", "last_cart", "last_order", "last_paid",
    "last_shipped", "last_delivered", "last_review", "registered_at",
)  # fmt: skip
COUNTERS: Final = (
    "views", "favorites", "cart_adds", "searches", "orders", "units", "paid_orders",
    "refunds", "cancels", "reviews", "complaints", "surveys", "points",
)  # fmt: skip
# (name in the profile, bucket prefix, bucket size, how many buckets)
WINDOWS: Final = (
    ("views_24h", "vh", HOUR_MS, 24),
    ("views_7d", "vd", DAY_MS, 7),
    ("cart_adds_24h", "ch", HOUR_MS, 24),
    ("orders_30d", "od", DAY_MS, 30),
    ("orders_90d", "od", DAY_MS, 90),
    ("spend_90d", "sd", DAY_MS, 90),
    ("spend_365d", "sd", DAY_MS, 365),
)
FACTS: Final = ("birthday", "gender", "region", "city", "member_level")


def money(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    cents = abs(cents)
    return f"{sign}{cents // 100}.{cents % 100:02d}"


def iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")


def _text(raw: Mapping[bytes, bytes]) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in raw.items()}


def window_sum(
    buckets: Mapping[str, str], prefix: str, size_ms: int, count: int, as_of: int
) -> int:
    """Σ of the last ``count`` buckets up to and including the one holding ``as_of``."""
    newest = as_of // size_ms
    total = 0
    for field, value in buckets.items():
        if field.startswith(prefix):
            bucket = int(field[len(prefix) :])
            if newest - count < bucket <= newest:
                total += int(value)
    return total


def cart_lines(raw: Mapping[str, str]) -> list[dict[str, Any]]:
    lines = []
    for item, encoded in sorted(raw.items()):
        price, _price_ts, category, _removed_at, entries = encoded.split("|", 4)
        qty = sum(int(entry.split(":")[1]) for entry in entries.split(";") if entry)
        if qty > 0:
            lines.append(
                {"item_id": item, "qty": qty, "price_cents": int(price), "category": category}
            )
    return lines


class ProfileReader:
    """Builds the profile document of DESIGN.md §2 from Redis."""

    def __init__(self, client: redis.asyncio.Redis, keys: Keys, shops: ShopConfigs) -> None:
        self._client = client
        self._keys = keys
        self._shops = shops

    async def read(self, shop: str, who: str, as_of_ms: int | None = None) -> Profile | None:
        """The profile, or None for a customer never seen or forgotten on request."""
        return (await self.read_many([(shop, who)], as_of_ms))[(shop, who)]

    async def read_many(
        self, customers: Sequence[tuple[str, str]], as_of_ms: int | None = None
    ) -> dict[tuple[str, str], Profile | None]:
        """Several profiles in one round trip."""
        as_of = as_of_ms if as_of_ms is not None else int(time.time() * 1000)
        return {
            (shop, who): None
            if stored is None
            else build_profile(shop, who, as_of, stored, self._shops.for_shop(shop))
            for (shop, who), stored in (await self.read_stored(customers)).items()
        }

    async def read_stored(
        self, customers: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], Stored | None]:
        """Customers' keys as stored, in one round trip; build_profile makes documents of them
        as of any moment (the rule stage wants each event's own)."""
        pipe = self._client.pipeline(transaction=False)
        wanted = list(dict.fromkeys(customers))
        for shop, who in wanted:
            p, w, c, a, r, f, *_dedup_tombstone_alias = self._keys.customer(shop, who)
            pipe.hgetall(p)
            pipe.hgetall(w)
            pipe.hgetall(c)
            pipe.hgetall(a)
            pipe.zrange(r, 0, -1, desc=True, withscores=True)
            pipe.zrange(f, 0, -1, desc=True, withscores=True)
        replies = await pipe.execute() if wanted else []
        found: dict[tuple[str, str], Stored | None] = {}
        for n, customer in enumerate(wanted):
            raw_p, raw_w, raw_c, raw_a, recent, favorites = replies[n * 6 : n * 6 + 6]
            found[customer] = (
                Stored(
                    fields=_text(raw_p),
                    buckets=_text(raw_w),
                    cart=_text(raw_c),
                    affinity=_text(raw_a),
                    recent=[member.decode() for member, _ in recent],
                    favorites=[member.decode() for member, _ in favorites],
                )
                if raw_p
                else None
            )
        return found

    def config_of(self, shop: str) -> ShopConfig:
        return self._shops.for_shop(shop)


@dataclass(frozen=True, slots=True)
class Stored:
    """A customer's keys as read from Redis, decoded to text."""

    fields: dict[str, str]
    buckets: dict[str, str]
    cart: dict[str, str]
    affinity: dict[str, str]
    recent: list[str]
    favorites: list[str]


def build_profile(shop: str, who: str, as_of: int, stored: Stored, config: ShopConfig) -> Profile:
    fields = stored.fields

    def number(name: str) -> int:
        return int(fields.get(name, 0))

    def moment(name: str) -> int | None:
        value = fields.get(name)
        return None if value is None else int(value)

    lines = cart_lines(stored.cart)
    cart_value = sum(line["qty"] * line["price_cents"] for line in lines)
    spend = number("spend")
    reviews, surveys = number("reviews"), number("surveys")
    derived = derive(
        as_of_ms=as_of,
        first_seen_ms=moment("first_seen"),
        last_order_ms=moment("last_order"),
        orders=number("orders"),
        paid_orders=number("paid_orders"),
        spend_cents=spend,
        points=number("points"),
        views=number("views"),
        favorites=number("favorites"),
        cart_adds=number("cart_adds"),
        config=config,
    )
    windows: dict[str, Any] = {}
    for name, prefix, size, count in WINDOWS:
        total = window_sum(stored.buckets, prefix, size, count, as_of)
        windows[name] = money(total) if name.startswith("spend") else total
    return {
        "shop": shop,
        "customer": who,
        "as_of": iso(as_of),
        "facts": {
            **{name: fields.get(name) for name in FACTS},
            "timezone": fields.get("timezone", config.timezone),
            "tags": orjson.loads(fields["tags"]) if "tags" in fields else [],
            "consents": {
                channel: fields.get(f"consent_{channel}") == "1"
                for channel in ("marketing", "sms", "email", "push")
            },
            "phone_hash": fields.get("phone_hash"),
            "email_hash": fields.get("email_hash"),
            "currency": config.currency,
        },
        "counters": {
            **{name: number(name) for name in COUNTERS},
            "spend": money(spend),
            "average_rating": round(number("rating_sum") / reviews, 2) if reviews else None,
            "csat": round(number("satisfied") / surveys, 4) if surveys else None,
        },
        "recency": {name: iso(moment(name)) for name in RECENCY},
        "windows": windows,
        "cart": {
            "items": [
                {
                    "item_id": line["item_id"],
                    "qty": line["qty"],
                    "price": money(line["price_cents"]),
                    "category": line["category"],
                }
                for line in lines
            ],
            "count": sum(line["qty"] for line in lines),
            "value": money(cart_value),
        },
        # Strongest first; ties by name so that the order is stable.
        "affinity": dict(
            sorted(
                ((k, int(v)) for k, v in stored.affinity.items()), key=lambda kv: (-kv[1], kv[0])
            )
        ),
        "recently_viewed": stored.recent,
        "favorites": stored.favorites,
        "derived": derived.as_dict(),
    }
