"""What the two pack journeys (rules/journeys/) must send and when customers leave them,
worked out the plain way: one customer at a time, events in time order, each journey
spelt out here as the steps its file describes, and nothing of the engine imported.

A wait ends at its own time: an event stamped at that very moment still comes first.
The steps are counted as a customer enters them (the ``visit``), as the send ids say.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Final

DAY_MS: Final = 86_400_000
# The namespace of every journey send id: the derivation is the contract, so it is
# spelt out here rather than imported.
SEND_NAMESPACE: Final = uuid.UUID("0b7c2f4e-8d1a-5c3e-9f60-6a6f75726e79")
ONBOARDING: Final = "new-member-onboarding"
CARE: Final = "post-purchase-care"
MARKETING_STEPS: Final = {"welcome", "coupon", "thanks", "survey", "repurchase"}
# Each journey's goal: an order within this long after the instance entered.
GOAL_WITHIN_MS: Final = {ONBOARDING: 10 * DAY_MS, CARE: 30 * DAY_MS}

Event = dict[str, Any]  # id, customer, type, ms, data
Gate = Callable[[str, str], str]  # (customer, step) → sent, held, capped or no_consent


@dataclass(frozen=True, order=True)
class Sent:
    customer: str
    journey: str
    key: str
    step: str
    visit: int
    at_ms: int
    id: str


@dataclass(frozen=True, order=True)
class Left:
    customer: str
    journey: str
    key: str
    reason: str
    at_ms: int


def send_id(shop: str, customer: str, journey: str, where: tuple[str, str, int]) -> str:
    """``where``: the instance (the id of the event that entered it), the step, the visit."""
    instance, step, visit = where
    name = "\x1f".join((shop, customer, journey, "1", instance, step, str(visit)))
    return str(uuid.uuid5(SEND_NAMESPACE, name))


@dataclass
class _Instance:
    key: str
    instance: str  # the entry event's id
    entered_ms: int
    step: str
    visit: int
    until_ms: int
    low_score_ms: int | None = None  # a score of 2 or less, since entry


@dataclass
class _Customer:
    shop: str
    who: str
    gate: Gate
    sent: list[Sent] = field(default_factory=list)
    left: list[Left] = field(default_factory=list)
    onboarded: bool = False
    onboarding: _Instance | None = None
    care: dict[str, _Instance] = field(default_factory=dict)
    entered: list[tuple[str, int]] = field(default_factory=list)  # (journey, at)
    orders: list[int] = field(default_factory=list)  # when

    def send(self, journey: str, instance: _Instance, at_ms: int) -> str:
        where = (instance.instance, instance.step, instance.visit)
        sid = send_id(self.shop, self.who, journey, where)
        self.sent.append(
            Sent(self.who, journey, instance.key, instance.step, instance.visit, at_ms, sid)
        )
        return self.gate(self.who, instance.step)

    def go(self, instance: _Instance, step: str) -> None:
        instance.step, instance.visit = step, instance.visit + 1

    # ---------------------------------------------------------------- onboarding
    def onboard(self, event_id: str, at_ms: int) -> None:
        if self.onboarded:
            return
        self.onboarded = True
        instance = _Instance("", event_id, at_ms, "welcome", 1, 0)
        self.entered.append((ONBOARDING, at_ms))
        self.send(ONBOARDING, instance, at_ms)
        self.go(instance, "settle-in")
        instance.until_ms = at_ms + 3 * DAY_MS
        self.onboarding = instance

    def onboarding_due(self, instance: _Instance) -> None:
        at_ms = instance.until_ms
        if instance.step == "settle-in":  # no order in three days
            self.go(instance, "coupon")
            if self.send(ONBOARDING, instance, at_ms) == "no_consent":
                return self._leave(instance, "no-consent", "no consent for the coupon", at_ms)
            self.go(instance, "first-order")
            instance.until_ms = at_ms + 7 * DAY_MS
            return None
        reason = "no first order within a week of the coupon"
        return self._leave(instance, "no-order", reason, at_ms)

    def onboarding_order(self, instance: _Instance, at_ms: int) -> None:
        if instance.step == "settle-in":
            reason = "ordered within three days, no coupon needed"
            self._leave(instance, "ordered-early", reason, at_ms)
        elif instance.step == "first-order":
            self.go(instance, "thanks")
            self.send(ONBOARDING, instance, at_ms)
            self._leave(instance, "done", "finished", at_ms)

    def _leave(self, instance: _Instance, step: str, reason: str, at_ms: int) -> None:
        self.go(instance, step)
        self.left.append(Left(self.who, ONBOARDING, "", reason, at_ms))
        self.onboarding = None

    # ---------------------------------------------------------------- post-purchase care
    def delivered(self, order: str, event_id: str, at_ms: int) -> None:
        if order in self.care or len(self.care) >= 3:
            return
        self.care[order] = _Instance(order, event_id, at_ms, "unpack", 1, at_ms + 2 * DAY_MS)
        self.entered.append((CARE, at_ms))

    def goals_reached(self) -> dict[str, int]:
        """Per journey, the instances with an order after they entered, within the goal's
        window (an order at the very moment of entry is not after it)."""
        reached = dict.fromkeys(GOAL_WITHIN_MS, 0)
        for journey, at_ms in self.entered:
            within = GOAL_WITHIN_MS[journey]
            if any(at_ms < order <= at_ms + within for order in self.orders):
                reached[journey] += 1
        return reached

    def care_due(self, instance: _Instance) -> None:
        at_ms = instance.until_ms
        if instance.step == "unpack":
            self.go(instance, "survey")
            self.send(CARE, instance, at_ms)
            self.go(instance, "low-score")
            if instance.low_score_ms is not None:
                return self._call_back(instance, at_ms)
            instance.until_ms = at_ms + 5 * DAY_MS
            return None
        if instance.step == "low-score":
            return self._until_repurchase(instance, at_ms)
        self.go(instance, "repurchase")
        self.send(CARE, instance, at_ms)
        self.left.append(Left(self.who, CARE, instance.key, "finished", at_ms))
        del self.care[instance.key]
        return None

    def low_score(self, at_ms: int) -> None:
        for instance in list(self.care.values()):
            if instance.low_score_ms is None:
                instance.low_score_ms = at_ms
                if instance.step == "low-score":
                    self._call_back(instance, at_ms)

    def _call_back(self, instance: _Instance, at_ms: int) -> None:
        self.go(instance, "call-back")
        self.send(CARE, instance, at_ms)
        self._until_repurchase(instance, at_ms)

    def _until_repurchase(self, instance: _Instance, at_ms: int) -> None:
        self.go(instance, "until-repurchase")
        instance.until_ms = at_ms + 23 * DAY_MS

    def refunded(self, order: str, at_ms: int) -> None:
        if self.care.pop(order, None) is not None:
            self.left.append(Left(self.who, CARE, order, "exit_on order.refunded", at_ms))

    # ---------------------------------------------------------------- time
    def fire_before(self, at_ms: int) -> None:
        """Every wait that ended before ``at_ms``, in time order."""
        while True:
            waiting = [
                (instance.until_ms, 0 if journey == ONBOARDING else 1, instance.key, journey)
                for journey, instance in self._instances()
            ]
            due = min((entry for entry in waiting if entry[0] < at_ms), default=None)
            if due is None:
                return
            if due[3] == ONBOARDING:
                assert self.onboarding is not None
                self.onboarding_due(self.onboarding)
            else:
                self.care_due(self.care[due[2]])

    def _instances(self) -> Iterable[tuple[str, _Instance]]:
        if self.onboarding is not None:
            yield ONBOARDING, self.onboarding
        for instance in self.care.values():
            yield CARE, instance

    def take(self, event: Event) -> None:
        at_ms, kind, data = event["ms"], event["type"], event.get("data", {})
        self.fire_before(at_ms)
        if kind == "order.placed":
            self.orders.append(at_ms)
            if self.onboarding is not None:
                self.onboarding_order(self.onboarding, at_ms)
        elif kind == "order.refunded":
            self.refunded(data["order_id"], at_ms)
        elif kind == "survey.answered" and data["score"] <= 2:
            self.low_score(at_ms)
        elif kind == "customer.registered":
            self.onboard(event["id"], at_ms)
        elif kind == "order.delivered":
            self.delivered(data["order_id"], event["id"], at_ms)


def expected(
    shop: str, events: Iterable[Event], gate: Gate, until_ms: int
) -> tuple[list[Sent], list[Left]]:
    """Every send and every exit of the pack journeys over ``events`` (each customer's in
    the order given), with waits running on to ``until_ms``."""
    customers = _customers(shop, events, gate, until_ms)
    sent: list[Sent] = []
    left: list[Left] = []
    for customer in customers.values():
        sent += customer.sent
        left += customer.left
    return sorted(sent), sorted(left)


def goals_reached(shop: str, events: Iterable[Event], gate: Gate, until_ms: int) -> dict[str, int]:
    """Per journey, how many instances reached its goal."""
    reached = dict.fromkeys(GOAL_WITHIN_MS, 0)
    for customer in _customers(shop, events, gate, until_ms).values():
        for journey, count in customer.goals_reached().items():
            reached[journey] += count
    return reached


def _customers(
    shop: str, events: Iterable[Event], gate: Gate, until_ms: int
) -> dict[str, _Customer]:
    customers: dict[str, _Customer] = {}
    for event in events:
        who = event["customer"]
        customer = customers.setdefault(who, _Customer(shop, who, gate))
        customer.take(event)
    for customer in customers.values():
        customer.fire_before(until_ms + 1)
    return customers
