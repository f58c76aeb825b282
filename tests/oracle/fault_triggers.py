"""Which triggers the rules in tests/data/fault_rules must fire, worked out the plain way.

The rules are transactional, without cooldown, quiet hours or holdout, so only timing
decides: one pass over the events in time order, one pending cart timer per customer,
one heap of deadlines. No Redis, no batches, no CEL; the conditions are spelt out here in
Python, so that the engine's reading of the YAML is checked too.
"""

from __future__ import annotations

import heapq
import uuid
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

import yaml

from tests.oracle.history import unique_in_time_order
from tests.oracle.triggers import TRIGGER_NAMESPACE

FAULT_RULES: Final = Path(__file__).parents[1] / "data" / "fault_rules"
CART_WINDOW_MS: Final = 30 * 60_000
BIG_ORDER: Final = Decimal(100)


def rule_versions(folder: Path = FAULT_RULES) -> dict[str, int]:
    """rule id → version, read from the YAML itself: a bumped version changes every id."""
    versions: dict[str, int] = {}
    for path in sorted(folder.glob("*.yaml")):
        document = yaml.safe_load(path.read_text())
        versions[str(document["id"])] = int(document["version"])
    return versions


@dataclass(frozen=True)
class Expected:
    rule: str
    shop: str
    customer: str
    occurrence: str  # the event id: the one itself, or the cart add that armed the timer


def trigger_id(versions: dict[str, int], rule: str, shop: str, who: str, occurrence: str) -> str:
    name = "\x1f".join((rule, str(versions[rule]), shop, who, occurrence))
    return str(uuid.uuid5(TRIGGER_NAMESPACE, name))


def expected_triggers(
    events: list[dict[str, Any]], versions: dict[str, int] | None = None
) -> dict[str, Expected]:
    """trigger id → what fired, for every trigger the fault rules must produce."""
    reference = Reference(versions or rule_versions())
    for at, event in unique_in_time_order(events):
        # A deadline D fires before an event later than D; an order at exactly D cancels.
        reference.fire_timers_before(at)
        reference.take(event, at)
    reference.fire_timers_before(2**62)
    return reference.fired


class Reference:
    def __init__(self, versions: dict[str, int]) -> None:
        self.versions = versions
        # (shop, customer) → (armed at, deadline, armed by) of the pending cart timer
        self.timers: dict[tuple[str, str], tuple[int, int, str]] = {}
        self.deadlines: list[tuple[int, str, str, str]] = []  # (deadline, shop, who, armed by)
        self.fired: dict[str, Expected] = {}

    def take(self, event: dict[str, Any], at: int) -> None:
        shop, who, kind, data = event["shop"], event["subject"], event["type"], event["data"]
        if kind == "review.posted" and data["rating"] <= 2:
            self.fire("bad-review", shop, who, event["id"])
        elif kind == "order.placed":
            if Decimal(str(data["total"])) >= BIG_ORDER:
                self.fire("big-order", shop, who, event["id"])
            timer = self.timers.get((shop, who))
            # An order cancels only a timer armed before it and not yet due.
            if timer is not None and timer[0] <= at <= timer[1]:
                del self.timers[(shop, who)]
        elif kind == "cart.item_added":
            # A pending timer moves to this add (rearm); one already due has fired before.
            self.timers[(shop, who)] = (at, at + CART_WINDOW_MS, event["id"])
            heapq.heappush(self.deadlines, (at + CART_WINDOW_MS, shop, who, event["id"]))

    def fire_timers_before(self, moment: int) -> None:
        while self.deadlines and self.deadlines[0][0] < moment:
            deadline, shop, who, armed_by = heapq.heappop(self.deadlines)
            timer = self.timers.get((shop, who))
            if timer is not None and timer[1:] == (deadline, armed_by):
                del self.timers[(shop, who)]
                self.fire("cart-abandoned", shop, who, armed_by)

    def fire(self, rule: str, shop: str, who: str, occurrence: str) -> None:
        tid = trigger_id(self.versions, rule, shop, who, occurrence)
        self.fired[tid] = Expected(rule, shop, who, occurrence)
