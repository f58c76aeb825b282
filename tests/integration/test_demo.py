"""`crmstream demo` runs the stack, a worker and the simulator, and events reach the worker."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from crmstream.settings import Settings
from tests.support import settings_env


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_demo_shows_events_flowing_end_to_end(settings: Settings) -> None:
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
    summary = result.stdout.strip().splitlines()[-1]
    published, taken, triggers, held = (int(part.split()[-1]) for part in summary.split(","))
    assert published > 0
    assert 0 < taken <= published
    # New members are welcomed, or held until morning where it is night.
    assert triggers + held > 0
    segments = result.stdout.strip().splitlines()[-2]
    assert "segments (live): " in segments
    assert "north-region" in segments.split("segments (live): ")[1]
