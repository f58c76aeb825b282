"""What an SRE sees, for real: a Prometheus server scraping a worker, and /readyz through a
Redis outage."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from crmstream.admin import create_topics
from crmstream.settings import Settings
from crmstream.topics import TopicNames
from handlers.keys import Keys
from handlers.profile.read import ProfileReader
from handlers.redis_client import connect
from handlers.shop_configs import ShopConfigs
from rules.folders import shop_configs_folder
from tests.integration.test_profiles import converge, publish, simulated
from tests.own_services import redis_of_its_own
from tests.support import (
    eventually,
    free_port,
    http_get,
    produce,
    require_tool,
    running_worker,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


@contextmanager
def prometheus_scraping(target: str, tmp_path: Path) -> Iterator[str]:
    """A real Prometheus server (Debian's package) scraping ``target`` every second."""
    binary = require_tool("prometheus", "prometheus")
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        f"  - job_name: crmstream\n    static_configs: [{{targets: ['{target}']}}]\n"
    )
    address = f"127.0.0.1:{free_port()}"
    log = (tmp_path / "prometheus.log").open("wb")
    server = subprocess.Popen(
        [binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address={address}"],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        yield f"http://{address}"
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def query(base: str, expression: str) -> float | None:
    status, body = http_get(f"{base}/api/v1/query?query={urllib.parse.quote(expression)}")
    if status != 200 or not body["data"]["result"]:
        return None
    return float(body["data"]["result"][0]["value"][1])


def test_a_real_prometheus_scrape_counts_every_event_published(
    settings: Settings, tmp_path: Path
) -> None:
    events = simulated(tmp_path / "events.jsonl", 3_000, seed=23)
    create_topics(settings)
    publish(settings, events)
    cart = TopicNames.from_settings(settings.topics).event("cart")
    produce(settings, cart, [(b"s:c", b"not json"), (b"s:c", b'{"type": "cart.item_added"}')])
    worker_at = f"{settings.worker.web_host}:{settings.worker.web_port}"
    with (
        running_worker(settings, tmp_path / "worker.log"),
        prometheus_scraping(worker_at, tmp_path) as prometheus,
    ):
        consumed = eventually(
            lambda: query(prometheus, "sum(crmstream_events_consumed_total)"), 120,
            f"Prometheus scraping all {len(events) + 2} events consumed",
            until=lambda count: count == len(events) + 2, every_s=1,
        )  # fmt: skip
        invalid = query(prometheus, 'sum(crmstream_events_consumed_total{outcome="invalid"})')
        up = query(prometheus, 'up{job="crmstream"}')
        faust = query(prometheus, "count({__name__=~'crmstream_faust_.+'})")
        dead = query(prometheus, "sum(crmstream_dead_letters_total)")
    assert consumed == len(events) + 2, (tmp_path / "worker.log").read_text()[-2000:]
    assert invalid == 2
    assert dead == 2
    assert up == 1
    assert faust is not None  # Faust's own sensors, on the same registry
    assert faust > 0


@pytest.mark.single_redis
async def test_readyz_follows_a_redis_outage_and_no_event_is_lost(
    settings: Settings, tmp_path: Path
) -> None:
    with redis_of_its_own(settings, tmp_path) as (own, pid):
        client = connect(own.redis)
        reader = ProfileReader(
            client, Keys(own.redis.key_prefix), ShopConfigs(shop_configs_folder(own.profiles))
        )
        readyz = f"http://{own.worker.web_host}:{own.worker.web_port}/readyz"
        try:
            create_topics(own)
            events = simulated(tmp_path / "events.jsonl", 10_000, seed=29)
            log = tmp_path / "worker.log"
            with running_worker(own, log) as worker:
                publish(own, events[:5_000])
                assert await _until(readyz, 200, 60), log.read_text()[-2000:]
                os.kill(pid, signal.SIGSTOP)
                stopped = time.monotonic()
                publish(own, events[5_000:])
                went_down = await _until(readyz, 503, 20)
                not_ready_after = time.monotonic() - stopped
                status, body = http_get(readyz)
                os.kill(pid, signal.SIGCONT)
                resumed = time.monotonic()
                came_back = await _until(readyz, 200, 60)
                ready_after = time.monotonic() - resumed
                await converge(reader, events, worker, log)  # nothing lost
        finally:
            await client.aclose()
    assert went_down, "/readyz stayed 200 with Redis stopped"
    assert not_ready_after < 5, not_ready_after
    assert status == 503
    assert any(problem.startswith("redis") for problem in body["problems"]), body
    assert came_back, "/readyz never became ready again"
    assert ready_after < 20, ready_after


async def _until(url: str, status: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        got, _ = await asyncio.to_thread(http_get, url)
        if got == status:
            return True
        await asyncio.sleep(0.2)
    return False


@pytest.mark.single_redis
async def test_a_worker_started_while_redis_is_away_waits_for_it(
    settings: Settings, tmp_path: Path
) -> None:
    with redis_of_its_own(settings, tmp_path) as (own, pid):
        base = f"http://{own.worker.web_host}:{own.worker.web_port}"
        create_topics(own)
        os.kill(pid, signal.SIGSTOP)
        with running_worker(own, tmp_path / "worker.log") as worker:
            alive = await _until(f"{base}/healthz", 200, 60)
            not_ready = await _until(f"{base}/readyz", 503, 20)
            # Started through and retrying on the Redis away: what would crash on start
            # has had its chance.
            written = tmp_path / "worker.log"
            await asyncio.to_thread(
                eventually,
                lambda: [line for line in written.read_text().splitlines() if "retrying" in line],
                60, "the worker retrying on the Redis away",
            )  # fmt: skip
            still_running = worker.poll() is None
            os.kill(pid, signal.SIGCONT)
            ready = await _until(f"{base}/readyz", 200, 60)
    log = (tmp_path / "worker.log").read_text()[-3000:]
    assert alive, log
    assert not_ready, log
    assert still_running, log
    assert ready, log
