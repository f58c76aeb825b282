"""Reading a profile back: one round trip for all of a customer's keys, windows as of a moment."""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import orjson

from handlers.functions import FunctionLibrary
from handlers.functions.profile import CART_LINE, LIBRARY, Bucket, CustomerBase, ReadProfiles
from handlers.functions.profile import Stored as StoredKeys
from handlers.keys import Keys
from handlers.redis_client import RedisClient, slot_groups
from handlers.shop_configs import ShopConfigs
from rules.activation import CENTS_SUFFIX
from rules.derived import derive
from rules.expressions import ALL
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
    ("views_24h", Bucket.VIEWS_HOUR, HOUR_MS, 24),
    ("views_7d", Bucket.VIEWS_DAY, DAY_MS, 7),
    ("cart_adds_24h", Bucket.CART_ADDS_HOUR, HOUR_MS, 24),
    ("orders_30d", Bucket.ORDERS_DAY, DAY_MS, 30),
    ("orders_90d", Bucket.ORDERS_DAY, DAY_MS, 90),
    ("spend_90d", Bucket.SPEND_DAY, DAY_MS, 90),
    ("spend_365d", Bucket.SPEND_DAY, DAY_MS, 365),
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


# Sections build_profile builds field by field when told which fields are read.
_FILTERED: Final = frozenset({"counters", "facts"})
# Facts kept in the profile hash under their own name, as they are.
_FACT_NAMES: Final = frozenset({*FACTS, "phone_hash", "email_hash"})
# Counters worked out from others, or money (the slow path of counters()).
_DERIVED_COUNTERS: Final = frozenset({"spend", "spend" + CENTS_SUFFIX, "average_rating", "csat"})


def _only(wanted: Collection[str] | None, section: dict[str, Any]) -> dict[str, Any]:
    return section if wanted is None else {k: v for k, v in section.items() if k in wanted}


def _pairs(flat: Sequence[bytes]) -> dict[str, str]:
    """A hash as HGETALL replies with it inside a Function's reply (field, value, …)."""
    pairs = iter(flat)
    return {field.decode(): value.decode() for field, value in zip(pairs, pairs, strict=True)}


# Bucket prefix → the windows summed from it: (name, bucket size, how many buckets).
_WINDOWS_OF: Final[dict[str, list[tuple[str, int, int]]]] = {}
for _name, _prefix, _size, _count in WINDOWS:
    _WINDOWS_OF.setdefault(_prefix.value, []).append((_name, _size, _count))
_PREFIX_LENGTH: Final = 2
if any(len(prefix) != _PREFIX_LENGTH for prefix in _WINDOWS_OF):
    raise AssertionError("window_totals reads bucket prefixes of two characters")


def window_totals(buckets: Mapping[str, str], as_of: int) -> dict[str, int]:
    """Each window's Σ of its last buckets up to and including the one holding ``as_of``,
    in one pass over the customer's buckets."""
    totals = dict.fromkeys((name for name, *_ in WINDOWS), 0)
    for field, value in buckets.items():
        windows = _WINDOWS_OF.get(field[:_PREFIX_LENGTH])
        if windows is None:
            continue
        bucket, amount = int(field[_PREFIX_LENGTH:]), int(value)
        for name, size, count in windows:
            newest = as_of // size
            if newest - count < bucket <= newest:
                totals[name] += amount
    return totals


def cart_lines(raw: Mapping[str, str]) -> list[dict[str, Any]]:
    lines = []
    for item, encoded in sorted(raw.items()):
        price, _price_ts, category, _removed_at, entries = encoded.split(CART_LINE["FIELD"], 4)
        qty = sum(
            int(entry.split(CART_LINE["DELTA"])[1])
            for entry in entries.split(CART_LINE["ENTRY"])
            if entry
        )
        if qty > 0:
            lines.append(
                {"item_id": item, "qty": qty, "price_cents": int(price), "category": category}
            )
    return lines


_SECTIONS_OF_P: Final = frozenset({"facts", "counters", "recency", "derived"})
# Each of a customer's keys (handlers/keys.py), and the sections built from it; the profile
# hash is always read: without it there is no profile.
_KEY_SECTIONS: Final = {
    "profile": frozenset(
        {*_SECTIONS_OF_P, "windows", "cart", "affinity", "recently_viewed", "favorites"}
    ),
    "windows": frozenset({"windows"}),
    "cart": frozenset({"cart"}),
    "affinity": frozenset({"affinity"}),
    "recent": frozenset({"recently_viewed"}),
    "favorites": frozenset({"favorites"}),
}
SECTIONS: Final = (
    "facts", "counters", "recency", "windows", "cart", "affinity", "recently_viewed",
    "favorites", "derived",
)  # fmt: skip


class ProfileReader:
    """Builds the profile document (docs/DESIGN.md §2, "The live profile") from Redis."""

    def __init__(self, client: RedisClient, keys: Keys, shops: ShopConfigs) -> None:
        self._client = client
        self._keys = keys
        self._shops = shops
        self._library = FunctionLibrary(client, LIBRARY, "profile")

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
        self,
        customers: Sequence[tuple[str, str]],
        sections: Collection[str] = SECTIONS,
        known: ReadBack | None = None,
    ) -> dict[tuple[str, str], Stored | None]:
        """Customers' keys as stored, in one Function call; build_profile makes documents of
        them as of any moment (the rule stage wants each event's own). Only the keys
        ``sections`` are built from are read; the others come back empty. What ``known``
        holds of them already (read back by the batch that changed them) is not read again."""
        wanted = list(dict.fromkeys(customers))
        kinds = key_kinds(sections)
        found: dict[tuple[str, str], Stored | None] = {}
        if known is not None and known.covers(kinds):
            held = known.stored
            found = {customer: held[customer] for customer in wanted if customer in held}
            wanted = [customer for customer in wanted if customer not in held]
        if not wanted:
            return found
        bases = [self._keys.customer_base(shop, who) for shop, who in wanted]
        groups = slot_groups(self._client, bases)
        calls = [
            ReadProfiles(",".join(kinds), [CustomerBase(bases[index]) for index in members])
            for members in groups
        ]
        replies: list[StoredKeys] = await self._library.run(calls)
        for members, reply in zip(groups, replies, strict=True):
            for index, row in zip(members, reply.rows, strict=True):
                found[wanted[index]] = stored_of(kinds, row)
        return found

    def config_of(self, shop: str) -> ShopConfig:
        return self._shops.for_shop(shop)


def key_kinds(sections: Collection[str]) -> tuple[str, ...]:
    """The customer's keys (CustomerKeys names) that ``sections`` are built from, the
    profile hash first."""
    wanted = set(sections)
    return tuple(kind for kind, needed_by in _KEY_SECTIONS.items() if needed_by & wanted)


def stored_of(kinds: Sequence[str], row: Sequence[Sequence[bytes]]) -> Stored | None:
    """One customer's keys as a Function gives them back (one reply per kind), or None for
    a customer without a profile."""
    got = dict(zip(kinds, row, strict=True))
    if not got["profile"]:
        return None
    return Stored(
        fields=_pairs(got["profile"]),
        buckets=_pairs(got.get("windows", ())),
        cart=_pairs(got.get("cart", ())),
        affinity=_pairs(got.get("affinity", ())),
        recent=[member.decode() for member in got.get("recent", ())],
        favorites=[member.decode() for member in got.get("favorites", ())],
    )


@dataclass(frozen=True, slots=True)
class ReadBack:
    """Profiles a batch's own profile call gave back as it left them (functions/profile.py
    Applied.rows): the keys ``kinds`` of the customers in ``stored``."""

    kinds: frozenset[str]
    stored: dict[tuple[str, str], Stored | None]

    def covers(self, kinds: Collection[str]) -> bool:
        return self.kinds.issuperset(kinds)


@dataclass(frozen=True, slots=True)
class Stored:
    """A customer's keys as read from Redis, decoded to text."""

    fields: dict[str, str]
    buckets: dict[str, str]
    cart: dict[str, str]
    affinity: dict[str, str]
    recent: list[str]
    favorites: list[str]


def build_profile(
    shop: str,
    who: str,
    as_of: int,
    stored: Stored,
    config: ShopConfig,
    *,
    sections: Collection[str] = SECTIONS,
    for_conditions: bool = False,
    fields: Mapping[str, Collection[str]] | None = None,
) -> Profile:
    """The profile document as of ``as_of``; only ``sections`` of it when a caller (a rule
    condition) needs no more.

    ``for_conditions``: as conditions read it, which ``profile_view`` (rules/activation.py)
    makes of the document: times as timestamps, money in cents under ``<name>_cents``. Built
    so straight from the integers Redis holds, rather than written out as text and parsed
    back: rules, segments and journeys build one per customer and moment they decide for.

    ``fields``: of the counters and facts, only the fields named per section are built
    (ALL: every one; a section not named: none), as conditions name them (money with its
    ``_cents``), for a caller that hands the profile to conditions alone."""
    builder = _Sections(stored, config, as_of, for_conditions=for_conditions)
    document: Profile = {"shop": shop, "customer": who, "as_of": builder.time(as_of)}
    for section in SECTIONS:
        if section in sections:
            wanted = fields.get(section, ()) if fields is not None else ALL
            if wanted != ALL and section in _FILTERED:
                document[section] = getattr(builder, section)(wanted)
            else:
                document[section] = getattr(builder, section)()
    return document


class _Sections:
    def __init__(
        self, stored: Stored, config: ShopConfig, as_of: int, *, for_conditions: bool
    ) -> None:
        self.stored, self.fields, self.config, self.as_of = stored, stored.fields, config, as_of
        self.for_conditions = for_conditions

    def time(self, ms: int | None) -> str | datetime | None:
        if not self.for_conditions:
            return iso(ms)
        return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC)

    def amount(self, name: str, cents: int) -> dict[str, Any]:
        """A sum of money, as ``name`` in the major unit, or as ``<name>_cents``."""
        return {name + CENTS_SUFFIX: cents} if self.for_conditions else {name: money(cents)}

    def number(self, name: str) -> int:
        return int(self.fields.get(name, 0))

    def moment(self, name: str) -> int | None:
        value = self.fields.get(name)
        return None if value is None else int(value)

    def facts(self, wanted: Collection[str] | None = None) -> dict[str, Any]:
        """All of them, or those ``wanted``."""
        fields, config = self.fields, self.config
        if wanted is not None and _FACT_NAMES.issuperset(wanted):
            return {name: fields.get(name) for name in wanted}
        return _only(wanted, {
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
        })  # fmt: skip

    def counters(self, wanted: Collection[str] | None = None) -> dict[str, Any]:
        """All of them, or those ``wanted``."""
        if wanted is not None and _DERIVED_COUNTERS.isdisjoint(wanted):
            return {name: self.number(name) for name in COUNTERS if name in wanted}
        reviews, surveys = self.number("reviews"), self.number("surveys")
        return _only(wanted, {
            **{name: self.number(name) for name in COUNTERS},
            **self.amount("spend", self.number("spend")),
            "average_rating": round(self.number("rating_sum") / reviews, 2) if reviews else None,
            "csat": round(self.number("satisfied") / surveys, 4) if surveys else None,
        })  # fmt: skip

    def recency(self) -> dict[str, Any]:
        return {name: self.time(self.moment(name)) for name in RECENCY}

    def windows(self) -> dict[str, Any]:
        windows: dict[str, Any] = {}
        for name, total in window_totals(self.stored.buckets, self.as_of).items():
            if name.startswith("spend"):
                windows.update(self.amount(name, total))
            else:
                windows[name] = total
        return windows

    def cart(self) -> dict[str, Any]:
        lines = cart_lines(self.stored.cart)
        return {
            "items": [
                {
                    "item_id": line["item_id"],
                    "qty": line["qty"],
                    **self.amount("price", line["price_cents"]),
                    "category": line["category"],
                }
                for line in lines
            ],
            "count": sum(line["qty"] for line in lines),
            **self.amount("value", sum(line["qty"] * line["price_cents"] for line in lines)),
        }

    def affinity(self) -> dict[str, int]:
        # Strongest first; ties by name so that the order is stable.
        ranked = sorted(
            ((k, int(v)) for k, v in self.stored.affinity.items()), key=lambda kv: (-kv[1], kv[0])
        )
        return dict(ranked)

    def recently_viewed(self) -> list[str]:
        return self.stored.recent

    def favorites(self) -> list[str]:
        return self.stored.favorites

    def derived(self) -> dict[str, Any]:
        return derive(
            as_of_ms=self.as_of,
            first_seen_ms=self.moment("first_seen"),
            last_order_ms=self.moment("last_order"),
            orders=self.number("orders"),
            paid_orders=self.number("paid_orders"),
            spend_cents=self.number("spend"),
            points=self.number("points"),
            views=self.number("views"),
            favorites=self.number("favorites"),
            cart_adds=self.number("cart_adds"),
            config=self.config,
        ).as_dict()
