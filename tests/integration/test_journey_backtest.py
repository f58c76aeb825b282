"""Backtesting a journey: over a seeded history of 300 customers and weeks of event time,
`crmstream journeys backtest` reports the entries, each step's sends, the exits by
reason and the goal the plain reference (tests/oracle/journeys.py) works out; a bad file
is refused with its line, and the scratch key space is gone afterwards."""

from __future__ import annotations

import asyncio
import os
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from crmstream.settings import Settings
from handlers.keys import Keys
from handlers.redis_client import connect
from streams.cli.child_worker import settings_env
from tests.journey_history import DAY_MS, cloud_event, gate_of, history
from tests.oracle import journeys as oracle

pytestmark = [pytest.mark.timeout(300)]
JOURNEYS = Path(__file__).resolve().parents[2] / "rules" / "journeys"
T0 = int(datetime(2026, 3, 1, 4, tzinfo=UTC).timestamp() * 1000)
SHOP = "s1"


async def journeys_cli(settings: Settings, *args: str) -> tuple[int, bytes, bytes]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "streams.cli", "journeys", *args,
        env={**os.environ, **settings_env(settings), "COLUMNS": "200"},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    stdout, stderr = await process.communicate()
    return process.returncode or 0, stdout, stderr


@pytest.mark.parametrize("journey", [oracle.ONBOARDING, oracle.CARE])
async def test_a_backtest_counts_what_the_reference_does(
    settings: Settings, tmp_path: Path, journey: str
) -> None:
    seed = 404
    print(f"seed={seed}")  # noqa: T201 -- replayed from it
    events, unreachable = history(seed, 300, T0)
    path = tmp_path / "history.jsonl"
    path.write_bytes(
        b"".join(orjson.dumps(cloud_event(event, SHOP)) + b"\n" for event in events) + b"not json\n"
    )
    until = events[-1]["ms"] + 40 * DAY_MS
    end = datetime.fromtimestamp(until / 1000, UTC).isoformat()
    code, out, err = await journeys_cli(
        settings, "backtest", str(JOURNEYS / f"{journey}.yaml"), "--events", str(path),
        "--until", end, "--json",
    )  # fmt: skip
    assert code == 0, err.decode()
    report = orjson.loads(out)

    gate = gate_of(unreachable)
    sent, left = oracle.expected(SHOP, events, gate, until)
    mine = [exit_ for exit_ in left if exit_.journey == journey]
    assert report["events"] == len(events)
    assert report["invalid_lines"] == 1
    assert report["entered"] == len(mine)  # everyone has left by the end
    assert report["still_in"] == {}
    assert report["exited"] == dict(Counter(exit_.reason for exit_ in mine))
    decided = {
        step["id"]: sum(
            n for outcome, n in step["sends"].items() if not outcome.startswith("converted")
        )
        for step in report["steps"]
        if step["kind"] == "send"
    }
    expected = Counter(s.step for s in sent if s.journey == journey)
    assert {step: n for step, n in decided.items() if n} == dict(expected)
    reached = oracle.goals_reached(SHOP, events, gate, until)
    assert report["goal"]["treated"] == len(mine)
    assert report["goal"]["reached"] == reached[journey]
    # Nothing of the scratch run is left behind.
    client = connect(settings.redis)
    try:
        left_over = [
            key async for key in client.scan_iter(match=Keys(settings.redis.key_prefix).pattern())
        ]
    finally:
        await client.aclose()
    assert left_over == []


async def test_a_bad_journey_is_refused_with_its_line(settings: Settings, tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    text = (JOURNEYS / f"{oracle.ONBOARDING}.yaml").read_text()
    broken.write_text(
        text.replace(
            "wait_for: {event: order.placed, timeout: 7d",
            "wait_for: {event: order.placed, timeout: 700d",
        )
    )
    events = tmp_path / "none.jsonl"
    events.write_text("")
    code, _out, err = await journeys_cli(settings, "backtest", str(broken), "--events", str(events))
    assert code == 1
    assert f"{broken}:" in err.decode()
    assert "lifetime" in err.decode()
