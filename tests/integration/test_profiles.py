"""Live profiles through the real broker and worker, checked field by field against the
plain reference implementation (tests/oracle/profiles.py)."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from crmstream.admin import create_topics
from crmstream.settings import Settings
from handlers.keys import Keys
from handlers.profile.read import ProfileReader
from handlers.redis_client import connect
from handlers.shop_configs import ShopConfigs
from rules.folders import shop_configs_folder
from schemas.times import epoch_ms
from storefront.publisher import Publisher, encode
from storefront.simulator import SimulationConfig, Simulator
from streams.cli.child_worker import settings_env
from tests.oracle.history import owners
from tests.oracle.profiles import mismatches
from tests.own_services import redis_of_its_own
from tests.redis_contents import taken
from tests.support import api_token, eventually, eventually_async, http_get, running_worker

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def simulated(path: Path, count: int, seed: int) -> list[dict[str, Any]]:
    """The simulator writes the file; the test reads it back like any storefront export."""
    with path.open("wb") as sink:
        for event in Simulator(SimulationConfig(seed=seed)).events(count):
            sink.write(encode(event) + b"\n")
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def publish(settings: Settings, events: list[dict[str, Any]]) -> None:
    with Publisher(settings) as publisher:
        for event in events:
            publisher.publish_json(orjson.dumps(event))


async def converge(
    reader: ProfileReader, events: list[dict[str, Any]], worker: Any, log: Path
) -> int:
    """Wait until Redis agrees with the reference on every profile: how many it compared.
    Fails with the differences left if it never does."""

    async def differences() -> tuple[int, list[str]]:
        if worker.poll() is not None:
            pytest.fail(f"the worker exited; see {log}")
        return await mismatches(reader, events)

    compared, _ = await eventually_async(
        differences, float(os.environ.get("CONVERGE_S", "300")),
        "every profile as the reference has it", until=lambda seen: not seen[1], every_s=2,
    )  # fmt: skip
    return compared


async def live_run(
    settings: Settings,
    reader: ProfileReader,
    tmp_path: Path,
    events: list[dict[str, Any]],
    published: list[dict[str, Any]] | None = None,
) -> None:
    """Publish (the events, or ``published``), run a worker until it agrees with the
    reference on ``events``; fails with the differences left if it never does."""
    create_topics(settings)
    publish(settings, events if published is None else published)
    with running_worker(settings, tmp_path / "worker.log") as worker:
        await converge(reader, events, worker, tmp_path / "worker.log")


async def test_every_field_of_every_profile_matches_the_reference(
    settings: Settings, reader: ProfileReader, tmp_path: Path
) -> None:
    events = simulated(tmp_path / "events.jsonl", 100_000, seed=2026)
    assert len(owners(events)) > 500
    await live_run(settings, reader, tmp_path, events)


async def test_everything_twice_some_out_of_order_changes_nothing(
    settings: Settings, reader: ProfileReader, tmp_path: Path
) -> None:
    events = simulated(tmp_path / "events.jsonl", 20_000, seed=7)
    again = list(events)
    random.Random(3).shuffle(again)
    await live_run(settings, reader, tmp_path, events, events + again)


async def test_a_worker_killed_mid_run_loses_and_doubles_nothing(
    settings: Settings, reader: ProfileReader, tmp_path: Path
) -> None:
    create_topics(settings)
    events = simulated(tmp_path / "events.jsonl", 40_000, seed=11)
    publish(settings, events)
    with running_worker(settings, tmp_path / "first.log") as first:
        eventually(
            lambda: taken(settings), 120, f"a third of the {len(events)} events taken",
            until=lambda count: count > len(events) // 3,
        )  # fmt: skip
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
    # Mid-run means some but not all: a kill after the last event would test a restart.
    assert taken(settings) < len(events), "the worker was killed after it had taken everything"
    with running_worker(settings, tmp_path / "second.log") as second:
        await converge(reader, events, second, tmp_path / "second.log")


async def test_profiles_over_http_and_on_the_command_line(
    settings: Settings, reader: ProfileReader, tmp_path: Path
) -> None:
    create_topics(settings)
    events = simulated(tmp_path / "events.jsonl", 3_000, seed=5)
    publish(settings, events)
    shop, who = next((e["shop"], e["subject"]) for e in events if e.get("subject"))
    as_of = max(e["time"] for e in events)
    base = f"http://{settings.worker.web_host}:{settings.worker.web_port}/profiles"
    token = api_token(settings, shop)
    with running_worker(settings, tmp_path / "worker.log") as worker:
        await converge(reader, events, worker, tmp_path / "worker.log")
        at = urllib.parse.quote(as_of)
        status, document = http_get(f"{base}/{shop}/{who}/?as_of={at}", token)
        missing, _ = http_get(f"{base}/{shop}/nobody/", token)
        bad_time, _ = http_get(f"{base}/{shop}/{who}/?as_of=yesterday", token)
    assert status == 200
    assert isinstance(document.pop("segments"), list)  # the live memberships, as of now
    assert document == await reader.read(shop, who, epoch_ms(datetime.fromisoformat(as_of)))
    assert missing == 404
    assert bad_time == 400

    shown = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "streams.cli", "profile", shop, who, "--json", "--as-of", as_of,
        env={**os.environ, **settings_env(settings)},
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    stdout, _ = await shown.communicate()
    assert shown.returncode == 0
    printed = orjson.loads(stdout)
    assert isinstance(printed.pop("segments"), list)
    assert printed == document


async def _snapshot(
    reader: ProfileReader, events: list[dict[str, Any]]
) -> dict[tuple[str, str], Any]:
    as_of = max(epoch_ms(datetime.fromisoformat(e["time"])) for e in events)
    return {owner: await reader.read(*owner, as_of) for owner in owners(events)}


async def _replay(settings: Settings, *args: str, status: int = 0) -> bytes:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "streams.cli", "replay", *args,
        env={**os.environ, **settings_env(settings)},
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    stdout, _ = await process.communicate()
    assert process.returncode == status
    return stdout


async def test_replay_equals_live(
    settings: Settings, reader: ProfileReader, tmp_path: Path
) -> None:
    events = simulated(tmp_path / "events.jsonl", 10_000, seed=13)
    await live_run(settings, reader, tmp_path, events)
    live = await _snapshot(reader, events)

    keys = Keys(settings.redis.key_prefix)
    client = connect(settings.redis)
    offsets = [await client.hgetall(keys.partition(n).offsets) for n in range(8)]
    assert any(offsets)
    machinery = await _machinery(client, keys)
    assert any(":outbox" in k or ":stats" in k for k in machinery)
    assert any(":timers" in k for k in machinery)
    output = await _replay(settings)
    assert b"read 10000 events" in output
    assert await _snapshot(reader, events) == live
    # Profiles only: the offsets the state reflects, the outboxes, timers, guards, stats and
    # memberships stay exactly as they were.
    assert await _machinery(client, keys) == machinery

    await _replay(settings, "--shop", "tea-house")
    assert await _snapshot(reader, events) == live
    assert await _machinery(client, keys) == machinery

    # Resetting the triggers too must be confirmed: asked on a terminal, refused without one.
    await _replay(settings, "--reset-triggers", status=2)
    assert await _machinery(client, keys) == machinery
    await _replay(settings, "--reset-triggers", "--shop", "tea-house", status=2)
    await _replay(settings, "--reset-triggers", "--yes")
    assert await _snapshot(reader, events) == live
    left = await _machinery(client, keys)
    assert set(left) == {keys.partition(n).offsets for n in range(8)} & set(machinery)
    await client.aclose()


async def _machinery(client: Any, keys: Keys) -> dict[str, bytes]:
    """Every key of the trigger shards and partitions, serialized as Redis holds it."""
    found: dict[str, bytes] = {}
    for base in [*keys.trigger_shards(), *(f"{keys.prefix}:{{p{n}}}:" for n in range(8))]:
        async for key in client.scan_iter(match=base + "*", count=1000):
            found[key.decode()] = await client.dump(key)
    return found


@pytest.mark.single_redis
async def test_redis_unreachable_for_a_while_loses_and_doubles_nothing(
    settings: Settings, tmp_path: Path
) -> None:
    """Redis stops answering mid-run (SIGSTOP): the worker waits and retries, then catches up."""
    with redis_of_its_own(settings, tmp_path) as (own, pid):
        client = connect(own.redis)
        reader = ProfileReader(
            client, Keys(own.redis.key_prefix), ShopConfigs(shop_configs_folder(own.profiles))
        )
        try:
            await eventually_async(lambda: _answers(client), 10, "its own Redis answers")
            create_topics(own)
            events = simulated(tmp_path / "events.jsonl", 30_000, seed=17)
            log = tmp_path / "worker.log"
            with running_worker(own, log) as worker:
                publish(own, events[:10_000])
                # Mid-run: the worker has taken some of the events and has more to take.
                eventually(lambda: taken(own), 60, "the first events taken", until=lambda n: n > 0)
                os.kill(pid, signal.SIGSTOP)
                publish(own, events[10_000:])
                # Unreachable for as long as it takes the worker to notice and retry.
                eventually(
                    lambda: [line for line in log.read_text().splitlines() if "retrying" in line],
                    60, "the worker retrying on a Redis away",
                )  # fmt: skip
                os.kill(pid, signal.SIGCONT)
                await converge(reader, events, worker, log)
        finally:
            await client.aclose()
    assert "retrying" in log.read_text()


async def _answers(client: Any) -> bool:
    try:
        return bool(await client.ping())
    except Exception:  # noqa: BLE001 -- any failure means: not yet
        return False
