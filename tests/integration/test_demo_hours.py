"""The demo fires at any hour of the day: its traffic, dated at fixed clocks, goes through
the shipped rule pack as a worker takes it, and at every hour some triggers are sent at once
while others wait for their customers' morning (quiet hours, in each customer's own zone).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

import pytest

from crmstream.settings import Settings
from handlers.backtest import read_events, run_rules
from handlers.backtest_report import BacktestReport
from rules import PACKAGED_RULES
from storefront.publisher import encode
from streams.cli.demo import demo_traffic

pytestmark = pytest.mark.single_redis

RATE: Final = 50.0  # the demo's own default pace, events per second
# What the demo publishes in its first 40 seconds: what a newcomer sees within a minute,
# once the worker has joined its group.
EVENTS: Final = int(RATE * 40)
WINTER: Final = datetime(2026, 1, 15, tzinfo=UTC)
SUMMER: Final = datetime(2026, 7, 15, tzinfo=UTC)
CLOCKS: Final = [WINTER + timedelta(hours=hour) for hour in range(24)] + [
    SUMMER + timedelta(hours=hour) for hour in (0, 6, 12, 18)
]


class SteppingClock:
    """The wall clock of a demo started at ``start``: each event leaves 1/RATE s later."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1 / RATE)
        return self.now


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("start", CLOCKS, ids=lambda at: at.strftime("%b-%H:00"))
async def test_the_demo_sends_triggers_and_holds_some_at_any_hour(
    settings: Settings, tmp_path: Path, start: datetime
) -> None:
    traffic = tmp_path / "demo.jsonl"
    with traffic.open("wb") as sink:
        for event in demo_traffic(seed=7, id_salt=0, clock=SteppingClock(start)).events(EVENTS):
            sink.write(encode(event) + b"\n")
    report = BacktestReport("the rule pack")
    await run_rules(settings, PACKAGED_RULES, read_events(traffic, report), report)
    assert report.events == EVENTS
    assert not report.invalid
    held = report.held_quiet_hours
    sent = report.triggers - held
    seen = f"at {start:%Y-%m-%d %H:%M} UTC: sent {sent}, held for quiet hours {held}"
    assert sent > 0, seen
    assert held > 0, seen
