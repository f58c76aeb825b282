"""What metrics cost: the whole worker (profiles, segments, rules) with and without them.

    python -m bench.metrics_cost [--events 50000] [--rounds 3]

Both read the same pre-loaded topics, each run in a consumer group and a Redis key
space of its own, so every run does the same work. A first run warms the broker
and Redis and is not counted; then the runs go on, off, off, on, on, off… so that
neither order nor a noisy neighbour on this shared machine favours one side; the
medians are compared.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import uuid
from pathlib import Path

from bench.decode import cpu_model, write_results
from bench.profiles import drain, isolated, worker_env
from crmstream.admin import create_topics, delete_topics
from crmstream.client.publisher import Publisher, encode
from crmstream.client.simulator import SimulationConfig, Simulator
from crmstream.settings import Settings
from crmstream.topics import TopicNames
from handlers.keys import Keys
from handlers.redis_client import connect_sync
from streams.cli.child_worker import start_worker, stop_worker

FULL = "handlers.pipeline:ProfilesAndTriggers.from_settings"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    run = uuid.uuid4().hex[:8]
    settings = isolated(Settings(), run)
    create_topics(settings)
    with Publisher(settings) as publisher:
        for event in Simulator(SimulationConfig(seed=1, customers_per_shop=3_000)).events(
            args.events
        ):
            publisher.publish_json(encode(event))
    print(f"{args.events:,} events pre-loaded into {settings.topics.prefix}.events.*")
    client = connect_sync(settings.redis)
    log_dir = Path(tempfile.gettempdir()) / f"crmstream-bench-{run}"
    rates: dict[str, list[float]] = {"with metrics": [], "without metrics": []}
    try:
        for n in range(-1, args.rounds * 2):
            metrics_on = n < 0 or (n % 4) in (0, 3)
            label = "with metrics" if metrics_on else "without metrics"
            prefix = f"{settings.redis.key_prefix}-{n + 1}"
            env = {
                **worker_env(settings, f"bench-{run}-{n + 1}", FULL),
                "CRMSTREAM_REDIS_KEY_PREFIX": prefix,
                "CRMSTREAM_METRICS_ENABLED": "true" if metrics_on else "false",
            }
            worker = start_worker(log_dir / f"worker-{n}.log", env)
            flow = Keys(prefix).flow
            try:
                rate = drain(
                    lambda flow=flow: sum(int(v) for v in client.hgetall(flow).values()),  # type: ignore[misc]
                    args.events,
                    worker,
                    900,
                )
            finally:
                stop_worker(worker)
            if n >= 0:
                rates[label].append(rate)
            print(f"  {label:<16} {rate:>9,.0f} ev/s{'  (warm-up)' if n < 0 else ''}", flush=True)
            doomed = list(client.scan_iter(match=Keys(prefix).pattern(), count=5000))
            for start in range(0, len(doomed), 5000):
                client.unlink(*doomed[start : start + 5000])
    finally:
        client.close()
        delete_topics(settings, list(TopicNames.from_settings(settings.topics).all))
    on = statistics.median(rates["with metrics"])
    off = statistics.median(rates["without metrics"])
    cost = 1 - on / off
    print(f"machine: {cpu_model()}, {os.cpu_count()} cores")
    print(f"  median with metrics {on:,.0f} ev/s, without {off:,.0f} ev/s: metrics cost {cost:.1%}")
    write_results(
        "metrics_cost",
        events=args.events,
        events_per_second=rates,
        median_with=on,
        median_without=off,
        cost=cost,
    )


if __name__ == "__main__":
    main()
