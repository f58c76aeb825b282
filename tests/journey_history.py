"""A seeded customer history for the pack journeys (rules/journeys/): registrations (some
refusing marketing, some customers never registered), orders, deliveries, refunds and
survey answers over about two weeks of event time; many fall inside a wait, some exactly
at its end. Shared by the engine's tests and the fault suite, judged by
tests/oracle/journeys.py."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any, Final

from tests.oracle import journeys as oracle

DAY_MS: Final = 86_400_000
CONSENTS: Final = {"marketing": True, "sms": True, "push": True, "email": True}
REFUSED: Final = dict.fromkeys(CONSENTS, False)
LINE: Final = {"item_id": "tea-1", "category": "tea", "qty": 1, "price": "10.00"}


def history(
    seed: int, customers: int, t0_ms: int, prefix: str = "ev"
) -> tuple[list[oracle.Event], frozenset[str]]:
    """The events from ``t0_ms`` on, in time order, and who may not be marketed to."""
    rng = random.Random(seed)
    events: list[tuple[int, int, oracle.Event]] = []
    unreachable = set()

    def add(at: int, who: str, kind: str, data: dict[str, Any]) -> None:
        events.append((at, len(events), {"customer": who, "type": kind, "data": data}))

    for n in range(customers):
        who = f"c{n}"
        start = t0_ms + rng.randrange(0, 3 * DAY_MS, 60_000)
        roll = rng.random()
        if roll < 0.2:
            unreachable.add(who)  # never registered: no consent known
        else:
            refused = roll < 0.3
            if refused:
                unreachable.add(who)
            add(start, who, "customer.registered", {"consents": REFUSED if refused else CONSENTS})
        for order in range(rng.choice([0, 0, 1, 1, 2, 3])):
            at = start + rng.choice(
                [rng.randrange(60_000, 12 * DAY_MS, 60_000), 3 * DAY_MS, 10 * DAY_MS]
            )
            order_id = f"o{n}-{order}"
            add(at, who, "order.placed", {"order_id": order_id, "items": [LINE], "total": "10.00"})
            delivered = at + rng.randrange(DAY_MS // 2, 4 * DAY_MS, 60_000)
            add(delivered, who, "order.delivered", {"order_id": order_id})
            if rng.random() < 0.15:
                refund = delivered + rng.randrange(0, 6 * DAY_MS, 60_000)
                add(refund, who, "order.refunded", {"order_id": order_id, "amount": "10.00"})
            if rng.random() < 0.5:
                answered = delivered + rng.choice(
                    [rng.randrange(0, 9 * DAY_MS, 60_000), 2 * DAY_MS, 7 * DAY_MS]
                )
                score = {"survey_id": "s", "score": rng.randint(1, 5), "scale": 5}
                add(answered, who, "survey.answered", score)
    ordered = sorted(events, key=lambda entry: (entry[0], entry[1]))
    # Ids sort as the events do: the walk takes a customer's events of one moment by name.
    return [
        event | {"ms": at, "id": f"{prefix}-{n:06d}"} for n, (at, _, event) in enumerate(ordered)
    ], frozenset(unreachable)


def gate_of(unreachable: frozenset[str]) -> oracle.Gate:
    """What the guards make of a send: no marketing to whom it may not reach."""

    def gate(who: str, step: str) -> str:
        return "no_consent" if who in unreachable and step in oracle.MARKETING_STEPS else "sent"

    return gate


def cloud_event(event: oracle.Event, shop: str) -> dict[str, Any]:
    """The event as a storefront publishes it."""
    return {
        "specversion": "1.0", "id": event["id"], "source": "test", "type": event["type"],
        "time": datetime.fromtimestamp(event["ms"] / 1000, UTC).isoformat(), "shop": shop,
        "subject": event["customer"], "data": event["data"],
    }  # fmt: skip
