"""Realistic storefront traffic, reproducible from a seed.

Shoppers browse, favourite, fill carts and sometimes buy; orders are paid,
shipped and delivered over the following days, a few are refunded; buyers
review; some sessions start anonymous and log in. Events come out in event
time order (a heap of pending future events), as the storefronts would send
them.
"""

from __future__ import annotations

import heapq
import random
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

JsonEvent = dict[str, Any]

SHOPS: Final = ("tea-house", "glow-cosmetics", "peak-outdoor")
CATALOGUE: Final = {
    "tea": [("green-tea", "58.00"), ("oolong", "128.00"), ("pu-erh", "299.00"),
            ("teapot", "199.00")],
    "skincare": [("serum", "269.00"), ("toner", "89.00"), ("mask", "15.90"),
                 ("sunscreen", "119.00")],
    "outdoor": [("jacket", "899.00"), ("boots", "659.00"), ("tent", "1299.00"),
                ("socks", "39.00")],
}  # fmt: skip
REGIONS: Final = (
    ("华东", "上海", "Asia/Shanghai"),
    ("华北", "北京", "Asia/Shanghai"),
    ("华南", "广州", "Asia/Shanghai"),
    ("西南", "成都", "Asia/Shanghai"),
    ("港澳台", "香港", "Asia/Hong_Kong"),
)
# A cross-border shop's customers: half at home, half abroad, in time zones that keep some
# of them awake at every hour of the day and some of them asleep (the demo's, so that at any
# hour triggers go out at once and others wait for the customer's morning).
CROSS_BORDER_REGIONS: Final = (
    *REGIONS,
    ("东南亚", "新加坡", "Asia/Singapore"),
    ("欧洲", "伦敦", "Europe/London"),
    ("北美", "纽约", "America/New_York"),
    ("北美", "温哥华", "America/Vancouver"),
    ("大洋洲", "悉尼", "Australia/Sydney"),
)
SEARCHES: Final = ("礼盒", "新品", "gift", "sale", "春茶", "防晒")


@dataclass(slots=True)
class Shopper:
    shop: str
    customer_id: str
    anonymous_id: str
    registered: bool = False
    logged_in: bool = False


@dataclass(slots=True)
class SimulationConfig:
    seed: int = 42
    customers_per_shop: int = 200
    start: datetime = field(default_factory=lambda: datetime(2025, 1, 1, tzinfo=UTC))
    view_to_cart: float = 0.35
    cart_to_order: float = 0.45
    refund_rate: float = 0.05
    cancel_rate: float = 0.03
    survey_rate: float = 0.15
    anonymous_share: float = 0.3
    # How often a shopper comes back, on average; sets how fast simulated time runs.
    days_between_visits: float = 3.0
    # Live (demos at a --rate): events keep their simulated order, but each is stamped with
    # the wall clock as it leaves, so days of shopping play out in minutes, never ahead.
    live: bool = False
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    # (region, city, time zone) a newcomer registers with, chosen evenly.
    regions: tuple[tuple[str, str, str], ...] = REGIONS
    # Mixed into every event id: the same seed gives the same traffic, and another salt
    # gives it fresh ids (a second demo run is new events, not a replay of the first).
    id_salt: int = 0


class Simulator:
    """An endless, seeded stream of CloudEvents (as dicts) in event-time order."""

    def __init__(self, config: SimulationConfig | None = None) -> None:
        self.config = config or SimulationConfig()
        self.rng = random.Random(self.config.seed)
        self.clock = self.config.start
        self._pending: list[tuple[datetime, int, JsonEvent]] = []
        self._sequence = 0
        self.shoppers = [
            Shopper(shop, f"c{index:06d}", f"anon-{shop}-{index:06d}")
            for shop in SHOPS
            for index in range(self.config.customers_per_shop)
        ]
        self._session_gap_s = self.config.days_between_visits * 86_400 / len(self.shoppers)

    def events(self, count: int | None = None) -> Iterator[JsonEvent]:
        emitted = 0
        while count is None or emitted < count:
            if not self._pending or self._pending[0][0] > self.clock:
                self._session()
            if self._pending and self._pending[0][0] <= self.clock:
                event = heapq.heappop(self._pending)[2]
                if self.config.live:
                    event["time"] = _rfc3339(self.config.clock())
                yield event
                emitted += 1

    # ------------------------------------------------------------ building
    def _event(self, shopper: Shopper, at: datetime, kind: str, data: JsonEvent) -> None:
        event: JsonEvent = {
            "specversion": "1.0",
            "id": str(uuid.UUID(int=self.rng.getrandbits(128) ^ self.config.id_salt, version=4)),
            "source": self.rng.choice(("storefront/web", "storefront/app")),
            "type": kind,
            "time": _rfc3339(at),
            "shop": shopper.shop,
            "data": data,
        }
        if shopper.logged_in:
            event["subject"] = shopper.customer_id
        else:
            event["anonymousid"] = shopper.anonymous_id
        self._sequence += 1
        heapq.heappush(self._pending, (at, self._sequence, event))

    def _session(self) -> None:
        rng = self.rng
        self.clock += timedelta(seconds=rng.expovariate(1 / self._session_gap_s))
        shopper = rng.choice(self.shoppers)
        at = self.clock
        # Newcomers always start anonymous; regulars sometimes browse before logging in.
        shopper.logged_in = shopper.registered and rng.random() >= self.config.anonymous_share
        category = rng.choice(list(CATALOGUE))
        cart: list[tuple[str, str, int]] = []
        for _ in range(rng.randint(1, 6)):
            at += timedelta(seconds=rng.randint(5, 90))
            item, price = rng.choice(CATALOGUE[category])
            self._event(
                shopper, at, "item.viewed", {"item_id": item, "category": category, "price": price}
            )
            if rng.random() < 0.1:
                self._event(shopper, at, "item.favorited", {"item_id": item, "category": category})
            if rng.random() < self.config.view_to_cart:
                qty = rng.randint(1, 3)
                cart.append((item, price, qty))
                self._event(
                    shopper, at, "cart.item_added",
                    {"item_id": item, "category": category, "qty": qty, "price": price},
                )  # fmt: skip
        if rng.random() < 0.1:
            self._event(shopper, at, "search.performed", {"query": rng.choice(SEARCHES)})
        if not shopper.logged_in and (cart or rng.random() < 0.3):
            at += timedelta(seconds=rng.randint(5, 60))
            self._log_in(shopper, at)
        if cart and rng.random() < self.config.cart_to_order:
            self._order(shopper, at + timedelta(seconds=rng.randint(30, 600)), category, cart)

    def _log_in(self, shopper: Shopper, at: datetime) -> None:
        """Sign up (first time) or log in; either way the anonymous history is merged."""
        shopper.logged_in = True
        if not shopper.registered:
            self._register(shopper, at)
        self._event(shopper, at, "customer.identified", {"anonymousid": shopper.anonymous_id})

    def _register(self, shopper: Shopper, at: datetime) -> None:
        rng = self.rng
        region, city, timezone = rng.choice(self.config.regions)
        birthday = date(rng.randint(1960, 2006), rng.randint(1, 12), rng.randint(1, 28))
        shopper.registered = True
        self._event(shopper, at, "customer.registered", {
            "birthday": birthday.isoformat(),
            "gender": rng.choice(("female", "male", "unknown")),
            "region": region, "city": city, "timezone": timezone,
            "member_level": "regular", "tags": [],
            "consents": {"marketing": rng.random() < 0.8, "sms": rng.random() < 0.6,
                         "email": rng.random() < 0.5, "push": rng.random() < 0.7},
        })  # fmt: skip

    def _order(
        self, shopper: Shopper, at: datetime, category: str, cart: list[tuple[str, str, int]]
    ) -> None:
        rng = self.rng
        order_id = f"o{rng.getrandbits(48):012x}"
        items = [{"item_id": i, "category": category, "qty": q, "price": p} for i, p, q in cart]
        cents = sum(int(price.replace(".", "")) * qty for _, price, qty in cart)
        total = f"{cents // 100}.{cents % 100:02d}"
        placed = {"order_id": order_id, "items": items, "total": total, "currency": "CNY"}
        self._event(shopper, at, "order.placed", placed)
        if rng.random() < self.config.cancel_rate:
            cancelled = at + timedelta(minutes=rng.randint(1, 60))
            self._event(shopper, cancelled, "order.cancelled", {"order_id": order_id})
            return
        paid = at + timedelta(minutes=rng.randint(1, 30))
        self._event(shopper, paid, "order.paid", {"order_id": order_id, "total": total})
        shipped = paid + timedelta(hours=rng.randint(4, 48))
        self._event(shopper, shipped, "order.shipped", {"order_id": order_id})
        delivered = shipped + timedelta(hours=rng.randint(24, 96))
        self._event(shopper, delivered, "order.delivered", {"order_id": order_id})
        if rng.random() < self.config.refund_rate:
            refunded = delivered + timedelta(days=rng.randint(1, 7))
            self._event(
                shopper, refunded, "order.refunded", {"order_id": order_id, "amount": total}
            )
        elif rng.random() < 0.4:
            rating = rng.choices((1, 2, 3, 4, 5), weights=(4, 4, 10, 30, 52))[0]
            review_at = delivered + timedelta(days=rng.randint(1, 10))
            review = {"item_id": cart[0][0], "order_id": order_id, "rating": rating}
            self._event(shopper, review_at, "review.posted", review)
        if rng.random() < self.config.survey_rate:
            # The post-delivery satisfaction survey, answered on a 5-point scale.
            score = rng.choices((1, 2, 3, 4, 5), weights=(3, 5, 12, 35, 45))[0]
            answered = delivered + timedelta(days=rng.randint(1, 3))
            survey = {"survey_id": "post-delivery", "score": score, "scale": 5}
            self._event(shopper, answered, "survey.answered", survey)


def ending_at(config: SimulationConfig, count: int, end: datetime) -> SimulationConfig:
    """``config`` moved in time so that the newest of its first ``count`` events is at
    ``end``. How much time they span is known only by simulating them: the same seed
    spans the same time from any start, so one dry run measures it."""
    newest = config.start
    for event in Simulator(replace(config, live=False)).events(count):
        newest = datetime.fromisoformat(event["time"])
    return replace(config, start=config.start + (end - newest))


def _rfc3339(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")
