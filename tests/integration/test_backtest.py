"""Backtesting a rule: the triggers it reports are the ones the live engine fires for the
same events, with the same ids."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from crmstream.admin import create_topics
from crmstream.settings import Settings
from crmstream.topics import TopicNames
from handlers.keys import Keys
from handlers.redis_client import connect
from storefront.publisher import encode
from storefront.simulator import SimulationConfig, Simulator
from streams.cli.child_worker import settings_env
from tests.integration.test_profiles import publish
from tests.support import consume, running_worker, value_bytes

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]
PACK = Path(__file__).resolve().parents[2] / "rules" / "pack"


async def run_backtest(settings: Settings, *args: str) -> tuple[int, bytes, bytes]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "streams.cli", "rules", "backtest", *args,
        env={**os.environ, **settings_env(settings), "COLUMNS": "200"},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    stdout, stderr = await process.communicate()
    return process.returncode or 0, stdout, stderr


def simulated(path: Path, count: int, seed: int) -> list[dict[str, Any]]:
    with path.open("wb") as sink:
        for event in Simulator(SimulationConfig(seed=seed)).events(count):
            sink.write(encode(event) + b"\n")
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


@pytest.mark.parametrize("rule", ["abandoned-cart-coupon", "post-delivery-survey"])
async def test_a_backtest_fires_what_the_live_engine_fires(
    settings: Settings, tmp_path: Path, rule: str
) -> None:
    events = simulated(tmp_path / "events.jsonl", 8_000, seed=31)
    # The events are from 2025: a live worker deciding them today would expire them all
    # (max_age). What is compared is what fires, so both runs keep them that long.
    rule_file = tmp_path / f"{rule}.yaml"
    text = (PACK / f"{rule}.yaml").read_text()
    assert text.rstrip().splitlines()[-1].startswith("  "), "the rule must end in its limits"
    rule_file.write_text(text.rstrip() + "\n  max_age: 3650d\n")
    # Timers run to now, as they do in a live worker once it has caught up.
    code, out, err = await run_backtest(
        settings, str(rule_file), "--events", str(tmp_path / "events.jsonl"), "--until", "now",
        "--json",
    )  # fmt: skip
    assert code == 0, err.decode()
    report = orjson.loads(out)
    assert report["triggers"] > 10
    assert report["events"] == len(events)
    assert len(report["sample"]) == 5
    assert all(trigger["data"]["reason"] for trigger in report["sample"])
    client = connect(settings.redis)
    try:  # nothing of the backtest is left in Redis
        left = [k async for k in client.scan_iter(match=Keys(settings.redis.key_prefix).pattern())]
        assert left == []
    finally:
        await client.aclose()

    rules = tmp_path / "rules"
    rules.mkdir()
    shutil.copy(rule_file, rules)
    live = settings.model_copy(
        update={"triggers": settings.triggers.model_copy(update={"rules_dir": rules})}
    )
    create_topics(live)
    publish(live, events)
    topic = TopicNames.from_settings(live.topics).triggers
    with running_worker(live, tmp_path / "worker.log"):
        messages = consume(live, [topic], count=report["triggers"], timeout_s=120)
    fired = sorted({orjson.loads(value_bytes(m))["id"] for m in messages})
    assert len(messages) == len(fired)
    assert fired == report["trigger_ids"]


async def test_bad_lines_are_reported_by_number_and_a_bad_rule_is_refused(
    settings: Settings, tmp_path: Path
) -> None:
    events = tmp_path / "events.jsonl"
    good = simulated(tmp_path / "good.jsonl", 50, seed=3)
    lines = [orjson.dumps(event) for event in good]
    lines.insert(9, b'{"type": "cart.item_added"}')
    lines.insert(20, b"not json")
    events.write_bytes(b"\n".join(lines) + b"\n")
    code, out, err = await run_backtest(
        settings, str(PACK / "abandoned-cart-coupon.yaml"), "--events", str(events), "--json"
    )
    assert code == 0, err.decode()
    report = orjson.loads(out)
    assert [entry["line"] for entry in report["invalid"]] == [10, 21]
    assert report["events"] == 50

    broken = tmp_path / "broken.yaml"
    broken.write_text("id: broken\nversion: 1\ndescription: x\nwhen: {event: cart.nope}\n")
    code, _, err = await run_backtest(settings, str(broken), "--events", str(events))
    assert code == 1
    assert f"{broken}:4: when.event: unknown event type 'cart.nope'" in err.decode()
