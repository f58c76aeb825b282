"""A backtest's report kept small however long its file: invalid lines listed up to a
bound and counted in full, triggers counted with only the earliest kept whole; the
events of a file counted without reading past the cap."""

from __future__ import annotations

from pathlib import Path

from handlers.backtest import event_lines, more_events_than
from handlers.backtest_report import LISTED_INVALID_LINES, BacktestReport


def trigger(n: int, minute: int, holdout: bool = False) -> dict[str, object]:
    return {
        "id": f"t-{n}", "time": f"2026-03-01T12:{minute:02d}:00Z", "shop": "tea-house",
        "subject": f"c-{n % 3}", "data": {"holdout": holdout},
    }  # fmt: skip


def test_triggers_are_counted_and_the_earliest_kept_whole() -> None:
    report = BacktestReport("welcome", sample_size=2)
    for n, minute in enumerate([30, 10, 50, 20, 40]):
        report.note_trigger(trigger(n, minute, holdout=n == 4), held=n == 0)
    summary = report.summary()
    assert summary["triggers"] == 5
    assert summary["customers"] == 3
    assert summary["held_quiet_hours"] == 1
    assert summary["held_out"] == 1
    assert summary["trigger_ids"] == ["t-0", "t-1", "t-2", "t-3", "t-4"]
    assert [t["id"] for t in summary["sample"]] == ["t-1", "t-3"]


def test_invalid_lines_are_listed_up_to_a_bound_and_all_counted() -> None:
    report = BacktestReport("welcome")
    for line in range(1, LISTED_INVALID_LINES + 11):
        report.note_invalid(line, "not json")
    summary = report.summary()
    assert summary["invalid_lines"] == LISTED_INVALID_LINES + 10
    assert len(summary["invalid"]) == LISTED_INVALID_LINES
    assert summary["invalid"][-1]["line"] == LISTED_INVALID_LINES


def test_events_are_the_lines_that_hold_something(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_bytes(b'{"a": 1}\n\n   \n{"b": 2}\r\nnot json\n')
    assert list(event_lines(path)) == [(1, b'{"a": 1}'), (4, b'{"b": 2}'), (5, b"not json")]
    assert more_events_than(path, 2)
    assert not more_events_than(path, 3)
