"""Which triggers the rules in tests/data/oracle_rules must fire, worked out the plain way.

One pass over the events in time order, one customer's state in a dict, one
heap of absence deadlines; no Redis, no batches, no CEL. The rules are spelt out
here in Python, so that the engine's reading of the YAML is checked too.
"""

from __future__ import annotations

import heapq
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

from tests.oracle.history import unique_in_time_order

MINUTE_MS: Final = 60_000
DAY_MS: Final = 86_400_000
CART_WINDOW_MS: Final = 30 * MINUTE_MS
VERSIONS: Final = {
    "service-callback": 1, "survey": 1, "paid-thanks": 2, "cart-coupon": 1, "welcome": 1,
}  # fmt: skip
COOLDOWN_MS: Final = {"survey": 3 * DAY_MS, "cart-coupon": DAY_MS}
CHANNELS: Final = {
    "service-callback": ["service_desk"], "survey": ["sms", "email"], "paid-thanks": ["sms"],
    "cart-coupon": ["push"], "welcome": ["in_app"],
}  # fmt: skip
TRANSACTIONAL: Final = {"service-callback"}
CHANNEL_CONSENT: Final = {"sms": "sms", "email": "email", "push": "push"}
# The namespace of every trigger id: the id derivation is the contract (docs/DESIGN.md §4,
# "The trigger contract"), so the reference spells it out rather than import it.
TRIGGER_NAMESPACE: Final = uuid.UUID("6f1d7c9e-2b1a-5d0e-9a3c-63726d747267")


def trigger_id(rule: str, shop: str, customer: str, occurrence: str) -> str:
    name = "\x1f".join((rule, str(VERSIONS[rule]), shop, customer, occurrence))
    return str(uuid.uuid5(TRIGGER_NAMESPACE, name))


@dataclass
class Customer:
    consents: dict[str, bool] = field(default_factory=dict)
    timezone: str = "Asia/Shanghai"
    cart_timer: tuple[int, int, str] | None = None  # (armed at, deadline, armed by)
    last_fired: dict[str, int] = field(default_factory=dict)
    fired: set[str] = field(default_factory=set)
    sent_per_day: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))


@dataclass(frozen=True)
class Expected:
    rule: str
    shop: str
    customer: str
    occurrence: str


def expected_triggers(events: list[dict[str, Any]], daily_cap: int) -> dict[str, Expected]:
    """trigger id → what fired, for every trigger the oracle rules must produce."""
    reference = Reference(daily_cap)
    for at, event in unique_in_time_order(events):
        reference.fire_timers_before(at)
        reference.take(event, at)
    reference.fire_timers_before(2**62)
    return reference.fired


class Reference:
    def __init__(self, daily_cap: int) -> None:
        self.daily_cap = daily_cap
        self.customers: dict[tuple[str, str], Customer] = defaultdict(Customer)
        self.fired: dict[str, Expected] = {}
        self.deadlines: list[tuple[int, str, str, str]] = []  # (deadline, shop, who, armed by)

    def take(self, event: dict[str, Any], at: int) -> None:
        shop, who, kind, data = event["shop"], event["subject"], event["type"], event["data"]
        state = self.customers[(shop, who)]
        if kind in ("customer.registered", "customer.updated"):
            for name, granted in (data.get("consents") or {}).items():
                if granted is not None:
                    state.consents[name] = granted
            state.timezone = data.get("timezone") or state.timezone
            if kind == "customer.registered":
                self.decide("welcome", shop, who, "welcome", at)
        elif kind == "review.posted" and data["rating"] <= 2:
            self.decide("service-callback", shop, who, event["id"], at)
        elif kind == "order.delivered":
            self.decide("survey", shop, who, event["id"], at)
        elif kind == "order.paid":
            self.decide("paid-thanks", shop, who, event["id"], at)
        elif kind == "order.placed":
            timer = state.cart_timer
            if timer is not None and timer[0] <= at <= timer[1]:
                state.cart_timer = None
        elif kind == "cart.item_added":
            # A pending timer moves to this add (rearm); one already due has fired before.
            state.cart_timer = (at, at + CART_WINDOW_MS, event["id"])
            heapq.heappush(self.deadlines, (at + CART_WINDOW_MS, shop, who, event["id"]))

    def fire_timers_before(self, moment: int) -> None:
        while self.deadlines and self.deadlines[0][0] < moment:
            deadline, shop, who, armed_by = heapq.heappop(self.deadlines)
            state = self.customers[(shop, who)]
            if state.cart_timer is not None and state.cart_timer[1:] == (deadline, armed_by):
                state.cart_timer = None
                self.decide("cart-coupon", shop, who, armed_by, deadline)

    def decide(self, rule: str, shop: str, who: str, occurrence: str, at: int) -> None:
        state = self.customers[(shop, who)]
        channel = next((c for c in CHANNELS[rule] if allowed(state, rule, c)), None)
        tid = trigger_id(rule, shop, who, occurrence)
        if channel is None or tid in state.fired:
            return
        cooldown, last = COOLDOWN_MS.get(rule, 0), state.last_fired.get(rule)
        if cooldown and last is not None and abs(at - last) < cooldown:
            return
        day = datetime.fromtimestamp(at / 1000, UTC).astimezone(ZoneInfo(state.timezone))
        cap_key = (channel, day.date().isoformat())
        if rule not in TRANSACTIONAL:
            if state.sent_per_day[cap_key] >= self.daily_cap:
                return
            state.sent_per_day[cap_key] += 1
        state.last_fired[rule] = max(at, last or at)
        state.fired.add(tid)
        self.fired[tid] = Expected(rule, shop, who, occurrence)


def allowed(state: Customer, rule: str, channel: str) -> bool:
    if rule in TRANSACTIONAL:
        return True
    needed = CHANNEL_CONSENT.get(channel)
    return bool(state.consents.get("marketing")) and (
        needed is None or bool(state.consents.get(needed))
    )
