from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

from storefront.simulator import SimulationConfig, Simulator


def test_same_seed_same_events() -> None:
    first = list(Simulator(SimulationConfig(seed=11)).events(2_000))
    second = list(Simulator(SimulationConfig(seed=11)).events(2_000))
    third = list(Simulator(SimulationConfig(seed=12)).events(2_000))
    assert first == second
    assert first != third


def test_events_come_in_event_time_order_with_unique_ids() -> None:
    events = list(Simulator().events(5_000))
    times = [event["time"] for event in events]
    assert times == sorted(times)
    assert len({event["id"] for event in events}) == len(events)


def test_the_whole_funnel_is_there() -> None:
    types = Counter(event["type"] for event in Simulator(SimulationConfig(seed=5)).events(20_000))
    for expected in (
        "customer.registered", "customer.identified", "item.viewed", "item.favorited",
        "cart.item_added", "order.placed", "order.paid", "order.shipped", "order.delivered",
        "order.refunded", "order.cancelled", "review.posted", "search.performed",
        "survey.answered",
    ):  # fmt: skip
        assert types[expected] > 0, expected
    assert types["item.viewed"] > types["cart.item_added"] > types["order.placed"]


def test_every_event_names_a_customer_or_an_anonymous_session() -> None:
    for event in Simulator().events(3_000):
        assert event["shop"]
        assert event.get("subject") or event.get("anonymousid")


def test_live_mode_stamps_the_wall_clock_and_keeps_memory_bounded() -> None:
    simulator = Simulator(SimulationConfig(seed=3, live=True))
    before = datetime.now(UTC) - timedelta(seconds=1)
    events = list(simulator.events(3_000))
    after = datetime.now(UTC) + timedelta(seconds=1)
    assert all(before <= datetime.fromisoformat(e["time"]) <= after for e in events)
    assert {e["type"] for e in events} >= {"customer.registered", "order.placed"}
    # Only follow-ups (payment, shipping, delivery …) wait in the simulator, not whole days.
    assert len(simulator._pending) < 1_000
