"""Money in rule conditions against the real Redis: the profile stage keeps the amounts,
the trigger stage decides on them in exact cents. Each rule holds only if the sum or
difference is exact; as doubles, 0.10 + 0.20 is not 0.30 and 19999999.99 less
19999999.98 is not 0.01 (tests/unit/test_money_conditions.py shows both)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from crmstream.settings import Settings
from handlers.pipeline import ProfilesAndTriggers
from tests.integration.test_trigger_stage import event, outbox, registered, started

pytestmark = pytest.mark.integration

RULES = {
    "cart-of-thirty-cents": """
id: cart-of-thirty-cents
version: 1
description: a cart of 0.10 and 0.20 is worth 0.30
when: {event: cart.item_added}
if: profile.cart.value_cents == cents('0.30')
then: {channels: [push], template: t}
limits: {transactional: true}
""",
    "lines-add-up": """
id: lines-add-up
version: 1
description: the order's lines add up to its total, to the cent
when: {event: order.placed}
if: >-
  event.data.items[0].price_cents + event.data.items[1].price_cents == event.data.total_cents
  && event.data.total_cents - cents('19999999.98') == 1
then: {channels: [push], template: t}
limits: {transactional: true}
""",
    "spent-exactly": """
id: spent-exactly
version: 1
description: lifetime spend, net of a refund, to the cent
when: {event: order.refunded}
if: profile.counters.spend_cents == cents('19999999.99') - cents('0.10')
then: {channels: [push], template: t}
limits: {transactional: true}
""",
}


@pytest.fixture
async def sink(settings: Settings, tmp_path: Path) -> AsyncIterator[ProfilesAndTriggers]:
    for name, text in RULES.items():
        (tmp_path / f"{name}.yaml").write_text(text)
    triggers = settings.triggers.model_copy(
        update={"rules_dir": tmp_path, "timer_disorder_s": 0.0, "timer_idle_s": 3600.0}
    )
    sink = started(settings.model_copy(update={"triggers": triggers}))
    yield sink
    await sink.close()


def line(item: str, price: str) -> dict[str, object]:
    return {"item_id": item, "category": "tea", "qty": 1, "price": price}


async def test_rules_decide_on_exact_cents(sink: ProfilesAndTriggers) -> None:
    await sink.handle([registered(0)])
    await sink.handle([event("cart.item_added", 1, line("dime", "0.10"))])
    await sink.handle([event("cart.item_added", 2, line("two-dimes", "0.20"))])
    big = {"order_id": "o1", "items": [line("a", "19999999.98"), line("b", "0.01")]}
    await sink.handle([event("order.placed", 3, {**big, "total": "19999999.99"})])
    await sink.handle([event("order.paid", 4, {"order_id": "o1", "total": "19999999.99"})])
    await sink.handle([event("order.refunded", 5, {"order_id": "o1", "amount": "0.10"})])

    fired = {t["data"]["rule"]: t["data"]["reason"][-1]["values"] for t in await outbox(sink)}
    assert set(fired) == set(RULES)
    # The reasons show the exact integers the conditions read.
    assert fired["cart-of-thirty-cents"] == {"profile.cart.value_cents": 30}
    assert fired["lines-add-up"]["event.data.total_cents"] == 1_999_999_999
    assert fired["spent-exactly"] == {"profile.counters.spend_cents": 1_999_999_989}
