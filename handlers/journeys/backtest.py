"""Backtesting a journey before it is published: what it would have done over past
events, sending nothing.

The engine runs it as a worker would (handlers/backtest.py replay): the same profiles,
the partition's walk, the journey Function and the guards, under a scratch key prefix
removed afterwards, with every shop of the events running the journey and no rule
beside it. Events are taken as a backlog is, in event-time order, waits ending by the
events' own time; so the entries, the sends of each step, the exits and the goal are
the ones the live engine would count for the same events.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from crmstream.settings import Settings
from handlers.backtest import read_events, replay
from handlers.backtest_report import BacktestReport
from handlers.journeys.overview import VersionView, version_view
from handlers.journeys.stats import read_journey_stats
from handlers.pipeline import ProfilesAndTriggers
from handlers.triggers.samples import rule_samples
from rules.folders import shop_configs_folder
from rules.journey_loader import CompiledJourney, compile_journey_file
from rules.loader import RuleSetError


@dataclass
class JourneyBacktest:
    journey: str
    version: int
    lines: BacktestReport  # the events read, and the invalid lines by number
    counted: VersionView | None = None

    def summary(self) -> dict[str, Any]:
        counted = self.counted.as_dict() if self.counted is not None else {}
        lines = self.lines.summary()
        return {
            "journey": self.journey,
            "version": self.version,
            "events": lines["events"],
            "invalid": lines["invalid"],
            "invalid_lines": lines["invalid_lines"],
            "entered": counted.get("entered", 0),
            "still_in": counted.get("now_at", {}),
            "steps": counted.get("steps", []),
            "exited": counted.get("exited", {}),
            "goal": counted.get("goal", {}),
        }


async def backtest_journey(
    settings: Settings, journey_file: Path, events: Path, until: datetime | None = None
) -> JourneyBacktest:
    """Run the journey of ``journey_file`` over ``events`` (JSON lines); waits run to the
    last event's time, or to ``until``. Raises RuleSetError for a bad journey file."""
    entry, problems = compile_journey_file(journey_file, rule_samples)
    if problems or entry is None:  # said of the file as given, not of the scratch copy
        raise RuleSetError(problems)
    spec = entry.journey
    report = JourneyBacktest(spec.id, spec.version, BacktestReport(spec.id, sample_size=0))
    scratch = Path(tempfile.mkdtemp(prefix="crmstream-journey-backtest-"))
    try:
        journeys, rules = scratch / "journeys", scratch / "rules"
        journeys.mkdir()
        rules.mkdir()
        shutil.copy(journey_file, journeys / journey_file.name)
        shops = _every_shop_runs(entry, shop_configs_folder(settings.profiles), scratch / "shops")

        async def collect(sink: ProfilesAndTriggers) -> None:
            counted = {
                (stats.journey, stats.version): stats
                for stats in await read_journey_stats(sink.client, sink.keys)
            }
            report.counted = version_view(
                spec.id, spec.version, entry.text, counted.get((spec.id, spec.version))
            )

        await replay(
            settings,
            {"rules_dir": rules, "journeys_dir": journeys},
            read_events(events, report.lines),
            collect,
            until=until,
            profiles={"shop_config_dir": shops},
        )
        return report
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _every_shop_runs(entry: CompiledJourney, shops: Path, into: Path) -> Path:
    """The shops' settings as they are, but for the journeys they run: this one, and
    only this one, for every shop."""
    into.mkdir()
    running = [entry.journey.id]
    for source in shops.glob("*.yaml"):
        settings = yaml.safe_load(source.read_text(encoding="utf-8")) or {}
        if source.stem == "default" or "journeys" in settings:
            settings["journeys"] = running
        (into / source.name).write_text(yaml.safe_dump(settings, allow_unicode=True))
    if not (into / "default.yaml").exists():
        (into / "default.yaml").write_text(yaml.safe_dump({"journeys": running}))
    return into
