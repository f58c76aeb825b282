"""`crmstream publish` and the Publisher: bad lines reported by number, good ones sent."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from crmstream.admin import create_topics
from crmstream.settings import Settings
from crmstream.topics import TopicNames
from schemas.errors import InvalidEventError, Reason
from storefront.publisher import Publisher, encode
from storefront.simulator import SimulationConfig, Simulator
from streams.cli.child_worker import settings_env
from tests.support import consume, value_bytes


def _run(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streams.cli", *args],
        env={**os.environ, **settings_env(settings)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def jsonl(tmp_path: Path) -> tuple[Path, list[bytes]]:
    good = [encode(event) for event in Simulator(SimulationConfig(seed=4)).events(300)]
    lines = list(good)
    lines.insert(10, b'{"specversion": "1.0"')
    lines.insert(20, orjson.dumps({**orjson.loads(good[0]), "type": "parcel.lost"}))
    lines.insert(30, b"")  # blank lines are skipped, not errors
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path, good


def test_publish_reports_bad_lines_and_sends_the_good(
    settings: Settings, jsonl: tuple[Path, list[bytes]]
) -> None:
    create_topics(settings)
    path, good = jsonl
    result = _run(settings, "publish", str(path))

    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "line 11: not_json: not JSON: unexpected end of data: line 1 column 22 (char 21)",
        "line 21: unknown_type: type 'parcel.lost' is not in the catalogue (18 known types)",
    ]
    assert "sent 300, bad 2" in result.stdout
    received = consume(settings, list(TopicNames.from_settings(settings.topics).events), 300)
    assert sorted(value_bytes(m) for m in received) == sorted(good)


def test_strict_publish_sends_nothing(settings: Settings, jsonl: tuple[Path, list[bytes]]) -> None:
    create_topics(settings)
    path, _ = jsonl
    result = _run(settings, "publish", "--strict", str(path))

    assert result.returncode == 1
    assert "nothing sent" in result.stderr
    names = TopicNames.from_settings(settings.topics)
    assert consume(settings, list(names.events), count=1, timeout_s=5) == []


def test_publisher_refuses_a_bad_event_with_the_workers_reason(settings: Settings) -> None:
    event = next(iter(Simulator().events(1)))
    with Publisher(settings) as publisher, pytest.raises(InvalidEventError) as refused:
        publisher.publish({**event, "time": "2026-01-01T00:00:00"})
    assert refused.value.reason is Reason.INVALID_FIELD
    assert "time" in refused.value.message
    assert publisher.report.delivered == 0
