"""A real worker process takes in every published event, exactly once."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

from crmstream.admin import create_topics
from crmstream.settings import Settings
from handlers.flow import flow_counts
from handlers.keys import Keys
from handlers.redis_client import connect_sync
from storefront.publisher import Publisher, stream_of
from storefront.simulator import SimulationConfig, Simulator
from tests.support import running_worker


def test_worker_counts_every_published_event(settings: Settings, tmp_path: Path) -> None:
    create_topics(settings)
    events = list(Simulator(SimulationConfig(seed=3, customers_per_shop=50)).events(3_000))
    expected = Counter(stream_of(event["type"]) for event in events)
    with Publisher(settings) as publisher:
        for event in events:
            publisher.publish(event)

    redis = connect_sync(settings.redis)
    flow_key = Keys(settings.redis.key_prefix).flow
    taken: Counter[str] = Counter()
    with running_worker(settings, tmp_path / "worker.log") as worker:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and sum(taken.values()) < len(events):
            assert worker.poll() is None, (tmp_path / "worker.log").read_text()[-3000:]
            time.sleep(0.5)
            taken = flow_counts(redis.hgetall(flow_key))
        time.sleep(2)  # anything beyond the expected count would be a double count
        taken = flow_counts(redis.hgetall(flow_key))
    redis.close()

    assert taken == expected
