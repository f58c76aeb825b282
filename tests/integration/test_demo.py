"""`crmstream demo` runs the stack, a worker and the simulator, and events reach the worker."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from crmstream.settings import Settings
from streams.cli.child_worker import settings_env

pytestmark = pytest.mark.single_redis


def run_demo(settings: Settings) -> tuple[dict[str, int], str]:
    env = {**os.environ, **settings_env(settings), "COLUMNS": "100"}
    result = subprocess.run(
        [sys.executable, "-m", "streams.cli", "demo", "--duration", "30", "--rate", "200"],
        env=env,
        capture_output=True,
        text=True,
        timeout=150,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    lines = result.stdout.strip().splitlines()
    summary = {
        part.strip().rsplit(" ", 1)[0]: int(part.split()[-1]) for part in lines[-1].split(",")
    }
    return summary, lines[-3]


@pytest.mark.slow
@pytest.mark.timeout(360)
def test_demo_shows_events_flowing_end_to_end_and_again_the_second_time(
    settings: Settings,
) -> None:
    for run in ("first", "second"):  # the same Redis and topics: a second demo is new traffic
        summary, segments = run_demo(settings)
        assert summary["published"] > 0, run
        assert 0 < summary["taken in"] <= summary["published"], (run, summary)
        assert summary["duplicates"] == 0, (run, summary)
        assert summary["dead letters"] == 0, (run, summary)
        # The demo's customers live in time zones around the world: at any hour some are
        # answered at once (tests/integration/test_demo_hours.py holds every hour).
        assert summary["triggers"] > 0, (run, summary)
        assert "segments (live): " in segments
        assert "north-region" in segments.split("segments (live): ")[1]
        # The demo's shops run the pack journeys: new members enter the onboarding.
        assert summary["journeys entered"] > 0, (run, summary)
