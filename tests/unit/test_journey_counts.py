"""What a journey stop counts, and how the stats read it back (pure)."""

from __future__ import annotations

from collections import Counter

from handlers.functions.triggers import SEPARATOR
from handlers.journeys.stats import counted_for, exit_count, journey_stats_of


def test_a_stop_counts_its_entry_its_wait_and_the_funnel() -> None:
    assert counted_for(None, "pause", held_before=False) == ["entered", "at:pause", "reached:pause"]
    assert counted_for("pause", None, held_before=True) == ["-at:pause"]
    assert counted_for("pause", "pause", held_before=True) == [
        "-at:pause",
        "at:pause",
    ]  # armed again
    assert counted_for("hello", "pause", held_before=False) == ["at:pause", "reached:pause"]


def test_the_stats_read_back_what_the_stops_counted() -> None:
    moves = [
        counted_for(None, "pause", held_before=False),
        counted_for(None, "pause", held_before=False),
        [*counted_for("pause", None, held_before=True), exit_count("finished")],
    ]
    counts: Counter[str] = Counter()
    for counted in moves:
        for name in counted:
            field = SEPARATOR.join(("s1", "series", "1", name.removeprefix("-")))
            counts[field] += -1 if name.startswith("-") else 1
    journeys: dict[bytes | str, bytes | str] = {k: str(v) for k, v in counts.items()}
    (stats,) = journey_stats_of([(journeys, {})], "s1")
    assert (stats.entered, dict(+stats.at), dict(stats.reached)) == (2, {"pause": 1}, {"pause": 2})
    assert dict(stats.exited) == {"finished": 1}
