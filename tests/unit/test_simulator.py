from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
from click.testing import CliRunner

from storefront.simulator import SimulationConfig, Simulator
from streams.cli import cli


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


def _times(path: Path) -> list[datetime]:
    lines = path.read_bytes().splitlines()
    return [datetime.fromisoformat(orjson.loads(line)["time"]) for line in lines]


def test_simulated_history_ends_now_unless_told_where_it_starts(tmp_path: Path) -> None:
    out = tmp_path / "f.jsonl"
    began = datetime.now(UTC)
    result = CliRunner().invoke(cli, ["simulate", "--count", "1000", "--out", str(out)])
    assert result.exit_code == 0, result.output
    times = _times(out)
    assert len(times) == 1_000
    assert times == sorted(times)
    # The newest is dated when the command ran; the oldest within the day the count spans.
    assert began - timedelta(minutes=1) <= times[-1] <= datetime.now(UTC)
    assert times[-1] - times[0] < timedelta(days=2)

    moved = tmp_path / "g.jsonl"
    args = ["simulate", "--count", "1000", "--start", "2025-03-01", "--out", str(moved)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    start = datetime(2025, 3, 1, tzinfo=UTC)
    assert start <= _times(moved)[0] < start + timedelta(hours=1)
    # The same seed: the same events, only dated differently.
    assert [e - times[0] for e in times] == [e - _times(moved)[0] for e in _times(moved)]


def test_start_and_a_live_rate_are_refused_together() -> None:
    args = ["simulate", "--rate", "5", "--start", "2025-03-01"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2
    assert "--start" in result.output
