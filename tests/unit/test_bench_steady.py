"""A latency level's cost, from two readings of the worker's metrics and CPU."""

from __future__ import annotations

import pytest

from bench import report, steady
from bench.cost import Snapshot

_PAGE = """\
# HELP crmstream_batch_size Events per batch.
# TYPE crmstream_batch_size histogram
crmstream_batch_size_bucket{{le="+Inf"}} {batches}
crmstream_batch_size_count {batches}
crmstream_batch_size_sum {events}
# HELP crmstream_batch_duration_seconds A batch, from hand-over to its offsets.
# TYPE crmstream_batch_duration_seconds histogram
crmstream_batch_duration_seconds_bucket{{le="+Inf"}} {batches}
crmstream_batch_duration_seconds_count {batches}
crmstream_batch_duration_seconds_sum {busy}
# HELP crmstream_redis_call_duration_seconds One round trip.
# TYPE crmstream_redis_call_duration_seconds histogram
crmstream_redis_call_duration_seconds_bucket{{le="+Inf",stage="profile"}} {profile_calls}
crmstream_redis_call_duration_seconds_count{{stage="profile"}} {profile_calls}
crmstream_redis_call_duration_seconds_sum{{stage="profile"}} {profile_s}
crmstream_redis_call_duration_seconds_count{{stage="journeys"}} 0.0
crmstream_redis_call_duration_seconds_sum{{stage="journeys"}} 0.0
"""


def _reading(at: float, worker_s: float, redis_s: float, **page: float) -> steady.Reading:
    text = _PAGE.format(**page)
    return steady.Reading(at, Snapshot(worker_s, redis_s, 0, 0), steady.samples_of(text))


def test_a_stretch_is_costed_per_event_and_per_batch() -> None:
    first = _reading(
        100.0, 5.0, 2.0, batches=10, events=1_000, busy=1.0, profile_calls=20, profile_s=0.5
    )
    last = _reading(
        110.0, 9.0, 5.0, batches=110, events=41_000, busy=9.0, profile_calls=320, profile_s=4.5
    )
    cost = steady.between(first, last)
    assert cost["events"] == 40_000
    assert cost["worker_us_per_event"] == pytest.approx(100.0)  # 4 s over 40,000 events
    assert cost["redis_us_per_event"] == pytest.approx(75.0)
    assert cost["turns_share"] == pytest.approx(0.7)  # 7 s of CPU over 10 s
    assert cost["events_per_batch"] == pytest.approx(400.0)
    assert cost["batch_share"] == pytest.approx(0.8)
    assert cost["redis_calls_per_batch"] == {"profile": pytest.approx(3.0)}
    # A stage with no round trips (journeys off) is left out.
    assert cost["redis_ms_per_batch"] == {"profile": pytest.approx(40.0)}


def test_the_page_shows_each_levels_cost_where_it_was_measured() -> None:
    cost = {
        "worker_us_per_event": 100.0, "redis_us_per_event": 75.0, "turns_share": 0.7,
        "events_per_batch": 400.0, "batch_share": 0.8,
        "redis_calls_per_batch": {"profile": 3.0}, "redis_ms_per_batch": {"profile": 40.0},
    }  # fmt: skip
    level = {
        "load": 0.75, "rate": 3000, "latency": {"count": 5, "p99_ms": 900},
        "timer_lateness": {"count": 0}, "steady": cost,
    }  # fmt: skip
    older = {key: value for key, value in level.items() if key != "steady"}
    lines = report._latency(
        {
            "command": "crmstream bench latency",
            "max_rate": 4000,
            "levels": [level],
            "against": {"levels": [older]},
        }
    )
    rows = [line for line in lines if line.startswith("| 75% | 100 |")]
    assert rows == ["| 75% | 100 | 75 | 0.70 | 400 | 80% | profile 40.0 (3.0) |"]
    # A result from before the readings were taken shows no row of them.
    assert not any("the version compared (worker" in line for line in lines)
