"""Scaling: one worker against two in the group, one Redis against a Redis Cluster, and
the cost per event as customers grow.

Workers: the ``full`` work on the same pre-loaded topics, drained by one worker,
then by two started together in one group (both join the first generation; the
rebalance is inside the figure, as it would be in production), then by one worker on
the local Redis Cluster (three primaries, three replicas; each batch's offsets wait
for a replica). Broker, Redis and the workers share this machine's cores, which
bounds what a second worker, or a cluster, can add: the cluster row measures what
the cluster path costs, as a ratio to one Redis.

Customers: Redis first holds N registered customers (10k, 100k, 1M), written by the
profile stage in this process, about half with an order, all registered 30 to 400
days ago. Then, per run, fresh topics carry the last weeks' simulated traffic over
those same N customers (a new seed each run, so no event repeats), drained by one
worker with the ``full`` work. The simulator's shoppers start anonymous and log in,
so part of that traffic is new anonymous shoppers merged into existing customers;
the runs share the key space, as a live system's traffic would. A flat cost per
event means the key count does not matter and the in-process caches are bounded.
"""

from __future__ import annotations

import asyncio
import random
import statistics
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import orjson
import redis

from bench.contenders import crmstream
from bench.harness import FULL, Workspace, summary
from devstack import Stack, StackSettings
from devstack.cluster import PRIMARIES, LocalCluster
from handlers.keys import Keys
from handlers.profile.stage import ProfileStage
from handlers.redis_client import SyncRedisClient
from schemas.decode import Decoder
from schemas.events import Envelope
from storefront.simulator import REGIONS, SHOPS

POPULATIONS: Final = (10_000, 100_000, 1_000_000)
_BATCH: Final = 5000


CLUSTER: Final = "1 worker, Redis Cluster"


def workers(events: int, runs: int, customers_per_shop: int) -> dict[str, Any]:
    rates: dict[str, list[float]] = {"1 worker": [], "2 workers": [], CLUSTER: []}
    redis_us: dict[str, list[float]] = {label: [] for label in rates}
    with Workspace.open("workers") as space:
        print(f"scaling: pre-loading {events:,} events", flush=True)
        space.preload(events, customers_per_shop)
        # The local cluster (three primaries, three replicas), started if it is not running.
        local = StackSettings()
        cluster = LocalCluster(local)
        Stack(space.settings, local, redis_cluster=True).up()
        with space.on_cluster(cluster.url) as clustered:
            for n in range(runs):
                for count, label, where in (
                    (1, "1 worker", space),
                    (2, "2 workers", space),
                    (1, CLUSTER, clustered),
                ):
                    cpu_before = redis_cpu_seconds(where.client)
                    rate = crmstream(where, FULL, workers=count, settle=True).rate
                    cpu_us = (redis_cpu_seconds(where.client) - cpu_before) * 1e6 / events
                    rates[label].append(rate)
                    redis_us[label].append(cpu_us)
                    print(
                        f"  run {n + 1}/{runs}  {label:<24} {rate:>10,.0f} ev/s"
                        f"  Redis {cpu_us:,.0f} µs CPU per event",
                        flush=True,
                    )
    one, two, on_cluster = (summary(rates[label]) for label in ("1 worker", "2 workers", CLUSTER))
    return {
        "events": events,
        "primaries": PRIMARIES,
        "events_per_second": {"1 worker": one, "2 workers": two, CLUSTER: on_cluster},
        "gain": float(two["median"]) / float(one["median"]),
        "cluster_ratio": float(on_cluster["median"]) / float(one["median"]),
        # Redis CPU (every primary, whole drain included) per event, median of the runs.
        "redis_cpu_us_per_event": {
            label: statistics.median(values) for label, values in redis_us.items()
        },
    }


def redis_cpu_seconds(client: SyncRedisClient) -> float:
    """CPU time Redis has used, summed over every primary of a cluster."""
    if isinstance(client, redis.RedisCluster):
        infos = client.info("cpu", target_nodes=redis.RedisCluster.PRIMARIES)
        nodes = list(infos.values()) if isinstance(infos, dict) else []
    else:
        nodes = [client.info("cpu")]
    return sum(float(n["used_cpu_user"]) + float(n["used_cpu_sys"]) for n in nodes)


def customers(events: int, runs: int, populations: tuple[int, ...] = POPULATIONS) -> dict[str, Any]:
    sizes: dict[str, Any] = {}
    with Workspace.open("customers") as outer:
        for population in populations:
            keys = outer.key_space()
            print(f"scaling: writing {population:,} customers into Redis", flush=True)
            asyncio.run(_prefill(outer, keys, population))
            rates = []
            for n in range(runs):
                outer.client.delete(keys.flow)  # each run counts its own events
                with Workspace.open(f"customers-{population}") as space:
                    # Traffic of the last weeks, after every customer registered.
                    recent = datetime.now(UTC) - timedelta(days=20)
                    space.preload(events, population // len(SHOPS), seed=100 + n, start=recent)
                    rate = crmstream(space, FULL, keys=keys, keep=True, settle=True).rate
                rates.append(rate)
                print(f"  {population:>9,} customers  run {n + 1}/{runs} {rate:>8,.0f} ev/s")
            outer.forget(keys.pattern())
            stats = summary(rates)
            sizes[str(population)] = {
                **stats,
                "microseconds_per_event": 1e6 / float(stats["median"]),
            }
    return {"events_per_run": events, "populations": sizes}


async def _prefill(space: Workspace, keys: Keys, population: int) -> None:
    """Registered customers with the simulator's ids, through the real profile stage."""
    settings = space.settings.model_copy(
        update={"redis": space.settings.redis.model_copy(update={"key_prefix": keys.prefix})}
    )
    stage = ProfileStage.from_settings(settings)
    decoder = Decoder()
    now = datetime.now(UTC)
    not_after = decoder.not_after(now)
    rng = random.Random(population)
    batch: list[Envelope] = []
    try:
        for n in range(population):
            shop, index = SHOPS[n % len(SHOPS)], n // len(SHOPS)
            batch.extend(
                decoder.require(orjson.dumps(raw), not_after)
                for raw in _customer(shop, f"c{index:06d}", rng, now)
            )
            if len(batch) >= _BATCH:
                await stage.apply(batch)
                batch.clear()
        if batch:
            await stage.apply(batch)
    finally:
        await stage.close()


def _customer(shop: str, who: str, rng: random.Random, now: datetime) -> list[dict[str, Any]]:
    joined = now - timedelta(days=rng.uniform(30, 400))
    region, city, timezone = rng.choice(REGIONS)
    base = {"specversion": "1.0", "source": "bench", "shop": shop, "subject": who}
    facts = {"region": region, "city": city, "timezone": timezone, "consents": {"marketing": True}}
    events = [
        {**base, "id": f"{shop}-{who}-r", "type": "customer.registered",
         "time": joined.isoformat(), "data": facts},
    ]  # fmt: skip
    if rng.random() < 0.5:
        line = {"item_id": "oolong", "category": "tea", "qty": 1, "price": "128.00"}
        order = {"order_id": f"{shop}-{who}-o", "items": [line], "total": "128.00"}
        at = joined + timedelta(days=rng.uniform(0, 25))
        events.append(
            {**base, "id": f"{shop}-{who}-o", "type": "order.placed",
             "time": at.isoformat(), "data": order}
        )  # fmt: skip
    return events
