"""``crmstream bench``: the scenarios in order, each writing its results, then the report."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import history, latency, memory, report, scaling, throughput
from bench.labels import CRMSTREAM, SCENARIOS
from bench.record import read_results, write_results
from crmstream.admin import list_topics
from crmstream.errors import BenchError
from crmstream.settings import Settings
from handlers.redis_client import connect_sync


@dataclass(frozen=True)
class Options:
    events: int = 100_000
    runs: int = 3
    customers_per_shop: int = 5_000
    seconds: float = 30.0  # of steady load per latency level
    max_rate: float | None = None  # latency: the full rate its loads are shares of
    against: Path | None = None  # throughput: another checkout's workers, in the same turns
    journeys: bool = False  # throughput: the workers with the pack journeys on, in turn too

    def command(self, scenario: str) -> str:
        words = ["crmstream bench", scenario]
        if scenario in (*throughput.SCENARIOS, "scaling"):
            words += [f"--events {self.events}", f"--runs {self.runs}"]
        if scenario in (*throughput.SCENARIOS, "latency") and self.against is not None:
            words.append("--against <a checkout of the version compared>")
        if scenario in throughput.SCENARIOS and self.journeys:
            words.append("--journeys")
        if scenario == "latency":
            words.append(f"--seconds {self.seconds:g}")
            if self.max_rate is not None:
                words.append(f"--max-rate {self.max_rate:.0f}")
        return " ".join(words)


def run(names: Sequence[str], options: Options) -> list[Path]:
    """Run the named scenarios (in the suite's order); the results files written."""
    _require_stack()
    written = []
    for name in (s for s in SCENARIOS if s in names):
        started = time.monotonic()
        try:
            fields = _measure(name, options)
        except Exception as exc:  # noqa: BLE001 -- said in the results; the other scenarios still run
            print(f"{name}: failed: {exc!r}", flush=True)
            fields = {"failed": f"{type(exc).__name__}: {exc}"}
        fields["wall_seconds"] = round(time.monotonic() - started, 1)
        if name in throughput.SCENARIOS:
            fields["history"] = history.extended(name, fields)
        written.append(write_results(name, options.command(name), **fields))
        print(f"{name}: done in {fields['wall_seconds']:.0f} s → {written[-1]}", flush=True)
    page, plot = report.write()
    written += [page, *([plot] if plot else [])]
    return written


def _measure(name: str, options: Options) -> dict[str, Any]:
    if name in throughput.SCENARIOS:
        return throughput.run(
            throughput.SCENARIOS[name],
            options.events,
            options.runs,
            options.customers_per_shop,
            options.against,
            journeys=options.journeys,
        )
    if name == "latency":
        logs = Path(tempfile.mkdtemp(prefix="crmstream-bench-latency-"))
        return latency.run(options.max_rate or _full_rate(), options.seconds, logs, options.against)
    if name == "scaling":
        half = max(options.events // 2, 10_000)
        return {
            "workers": scaling.workers(options.events, options.runs, options.customers_per_shop),
            "customers": scaling.customers(half, options.runs),
        }
    return memory.run()


def _full_rate() -> float:
    full = read_results().get("full")
    if full is None or "failed" in full:
        raise BenchError("latency needs the `full` rate: run `crmstream bench full` first")
    return float(full["events_per_second"][CRMSTREAM]["median"])


def _require_stack() -> None:
    settings = Settings()
    try:
        connect_sync(settings.redis).ping()
        list_topics(settings, timeout_s=5)
    except Exception as exc:
        raise BenchError(
            f"Kafka and Redis must be running ({exc}); start them with `crmstream stack up`"
        ) from exc
