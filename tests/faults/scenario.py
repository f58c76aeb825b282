"""A seeded storefront history that is hard on trigger timing.

Every customer's events travel on all five event topics, and the worker reads each
topic at its own pace: a cart add on `cart` and the order that cancels it on `order`
can be read seconds apart, in either order. Orders land within a few milliseconds of
the 30-minute deadline, on both sides of it and exactly on it; cart adds rearm pending
timers, some just before they fall due; order totals straddle 100.00. Everything lies
in the past (a 4-hour window ending an hour ago), so a backlog, not the clock, decides.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from tests.support import chosen_seed

SHOPS: Final = ("tea-house", "wine-cellar")
WINDOW: Final = timedelta(hours=4)
WINDOW_ENDS_BEFORE_NOW: Final = timedelta(hours=1)
DUPLICATE_SHARE: Final = 0.08
DEADLINE: Final = timedelta(minutes=30)
# Orders after the last cart add, clustered on the deadline (D = 30 min; D itself cancels).
NEAR_DEADLINE: Final = (
    timedelta(minutes=28),
    timedelta(minutes=29, seconds=59, milliseconds=999),
    DEADLINE,
    DEADLINE,
    timedelta(minutes=30, milliseconds=1),
    timedelta(minutes=30, seconds=1),
    timedelta(minutes=32),
)
TOTALS_ON_THE_LINE: Final = ("99.99", "100.00", "100.00", "100.01")
CATEGORIES: Final = ("tea", "teaware", "snacks", "wine")

Event = dict[str, Any]


def seed_of(default: int) -> int:
    """The case's own seed, or FAULTS_SEED to replay a failure; printed either way."""
    return chosen_seed("FAULTS_SEED", default)


@dataclass
class Scenario:
    seed: int
    rng: random.Random  # the one source of every random choice, schedules included
    events: list[Event]  # in publication order, redeliveries included
    customers: int

    @property
    def unique(self) -> int:
        return len({event["id"] for event in self.events})


def generate(seed: int, customers: int = 250, shops: int = 2) -> Scenario:
    rng = random.Random(seed)
    end = datetime.now(UTC).replace(microsecond=0) - WINDOW_ENDS_BEFORE_NOW
    start = end - WINDOW
    history: list[Event] = []
    for n in range(customers):
        history += _customer(rng, SHOPS[n % shops], f"c{n:06d}", start, end)
    history.sort(key=lambda event: event["time"])
    return Scenario(seed, rng, with_redeliveries(rng, history), customers)


def with_redeliveries(rng: random.Random, history: list[Event]) -> list[Event]:
    """Each chosen event is published again, later in the stream, as the same bytes."""
    keyed: list[tuple[float, Event]] = [(float(n), event) for n, event in enumerate(history)]
    chosen = rng.sample(range(len(history)), round(len(history) * DUPLICATE_SHARE))
    keyed.extend((rng.uniform(n + 1, len(history) + 50), history[n]) for n in chosen)
    keyed.sort(key=lambda pair: pair[0])
    return [event for _, event in keyed]


class _Shopper:
    def __init__(self, rng: random.Random, shop: str, who: str, at: datetime) -> None:
        self.rng, self.shop, self.who, self.at = rng, shop, who, at
        self.events: list[Event] = []

    def emit(self, kind: str, data: dict[str, Any], at: datetime | None = None) -> None:
        when = self.at if at is None else at
        self.events.append(
            {
                "specversion": "1.0",
                "id": str(uuid.UUID(int=self.rng.getrandbits(128), version=4)),
                "source": "faults/scenario",
                "type": kind,
                "time": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "shop": self.shop,
                "subject": self.who,
                "data": data,
            }
        )

    def later(self, low_s: float, high_s: float) -> datetime:
        # Milliseconds at random: no two events of a customer share an instant by accident.
        self.at += timedelta(milliseconds=self.rng.randint(int(low_s * 1000), int(high_s * 1000)))
        return self.at

    def line(self) -> dict[str, Any]:
        rng = self.rng
        cents = rng.randint(1500, 9000)
        return {
            "item_id": f"sku-{rng.randint(1, 40)}",
            "category": rng.choice(CATEGORIES),
            "qty": rng.randint(1, 2),
            "price": f"{cents // 100}.{cents % 100:02d}",
        }

    def order(self, at: datetime) -> None:
        rng = self.rng
        if rng.random() < 0.45:
            total = rng.choice(TOTALS_ON_THE_LINE)
        else:
            cents = rng.randint(6000, 14000)
            total = f"{cents // 100}.{cents % 100:02d}"
        line = {**self.line(), "qty": 1, "price": total}
        order_id = f"o{rng.getrandbits(40):010x}"
        self.emit(
            "order.placed",
            {"order_id": order_id, "items": [line], "total": total, "currency": "CNY"},
            at,
        )

    def browse(self) -> None:
        line = self.line()
        kind = self.rng.choice(("item.viewed", "item.viewed", "item.favorited", "search"))
        if kind == "search":
            self.emit("search.performed", {"query": line["category"]})
        elif kind == "item.viewed":
            self.emit(kind, {k: line[k] for k in ("item_id", "category", "price")})
        else:
            self.emit(kind, {k: line[k] for k in ("item_id", "category")})

    def session(self) -> None:
        """Browse, add to the cart (and add again), then order on the deadline, or not."""
        rng = self.rng
        for _ in range(rng.randint(0, 3)):
            self.later(5, 120)
            self.browse()
        for n in range(rng.choices((1, 2, 3), weights=(5, 3, 2))[0]):
            if n and rng.random() < 0.25:
                self.later(25 * 60, 29 * 60 + 59)  # rearmed just before the deadline
            else:
                self.later(10, 300)
            self.emit("cart.item_added", self.line())
        shape = rng.random()
        if shape < 0.55:
            self.order(self.at + rng.choice(NEAR_DEADLINE))
            self.at += DEADLINE + timedelta(minutes=3)
        elif shape < 0.7:
            # Just before the add that it will therefore not cancel: a race across topics.
            self.order(self.at - timedelta(milliseconds=rng.randint(1, 1500)))
        elif shape < 0.8:
            self.order(self.later(30, 600))
        # else abandoned: the timer fires, unless the next session rearms it in time.

    def review(self) -> None:
        rating = self.rng.choices((1, 2, 3, 4, 5), weights=(3, 3, 2, 3, 3))[0]
        item = f"sku-{self.rng.randint(1, 40)}"
        order_id = f"o{self.rng.getrandbits(40):010x}"
        self.emit("review.posted", {"item_id": item, "order_id": order_id, "rating": rating})


def _customer(
    rng: random.Random, shop: str, who: str, start: datetime, end: datetime
) -> list[Event]:
    shopper = _Shopper(rng, shop, who, start + timedelta(seconds=rng.uniform(0, 900)))
    shopper.emit(
        "customer.registered",
        {"timezone": "Asia/Shanghai", "consents": {"marketing": rng.random() < 0.5}},
    )
    target = rng.randint(15, 21)
    while len(shopper.events) < target and shopper.at < end:
        roll = rng.random()
        if roll < 0.55:
            shopper.session()
        elif roll < 0.75:
            shopper.later(60, 1800)
            shopper.review()
        elif roll < 0.85:
            shopper.later(60, 1200)
            shopper.emit("customer.updated", {"member_level": rng.choice(("silver", "gold"))})
        else:
            shopper.later(30, 900)
            shopper.browse()
        shopper.later(60, 20 * 60)
    # A session may run past the window; nothing is ever dated after it (nor in the future).
    return [event for event in shopper.events if event["time"] < _iso(end)]


def _iso(at: datetime) -> str:
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
