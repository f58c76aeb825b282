"""The plain reference of the fault suite, on hand-made histories: its tie rules are the
contract the engine is held to, so they are pinned down here without any broker."""

from __future__ import annotations

from typing import Any

from tests.oracle.fault_triggers import expected_triggers

T0 = "2026-03-01T10:00:00.000Z"


def at(minutes: int, seconds: int = 0, millis: int = 0) -> str:
    return f"2026-03-01T10:{minutes:02d}:{seconds:02d}.{millis:03d}Z"


def event(kind: str, time: str, eid: str, **data: Any) -> dict[str, Any]:
    return {"id": eid, "type": kind, "time": time, "shop": "s", "subject": "c", "data": data}


def fired(*events: dict[str, Any]) -> list[tuple[str, str]]:
    return sorted((e.rule, e.occurrence) for e in expected_triggers(list(events)).values())


def test_an_order_exactly_on_the_deadline_cancels_and_one_a_millisecond_later_does_not() -> None:
    add = event("cart.item_added", T0, "a")
    on_time = event("order.placed", at(30), "o", total="10.00")
    late = event("order.placed", at(30, 0, 1), "o", total="10.00")
    assert fired(add, on_time) == []
    assert fired(add, late) == [("cart-abandoned", "a")]


def test_a_second_add_moves_the_timer_and_an_order_before_an_add_cancels_nothing() -> None:
    first = event("cart.item_added", T0, "a1")
    second = event("cart.item_added", at(29, 59, 999), "a2")
    order = event("order.placed", at(45), "o", total="10.00")
    assert fired(first, second) == [("cart-abandoned", "a2")]
    assert fired(first, second, order) == []
    before = event("order.placed", at(29, 59, 998), "o", total="10.00")
    assert fired(second, before) == [("cart-abandoned", "a2")]


def test_conditions_and_redeliveries() -> None:
    orders = [event("order.placed", T0, t, total=t) for t in ("99.99", "100.00", "100.01")]
    reviews = [event("review.posted", T0, f"r{n}", rating=n) for n in (1, 2, 3)]
    assert fired(*orders, *reviews, *orders) == [
        ("bad-review", "r1"),
        ("bad-review", "r2"),
        ("big-order", "100.00"),
        ("big-order", "100.01"),
    ]
