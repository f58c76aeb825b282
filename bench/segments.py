"""Segments at scale: sizes for a million customers, and a recheck pass over all of them.

    python -m bench.segments [--customers 1000000]

Builds the customers through the real profile stage (in this process, on the
configured Redis, under a key prefix of its own, removed at the end): each
registers, most order once or more within the last year, some only favourite
things, a few are on the merchant's VIP list. Then it measures what an operator
feels: a first recheck, which evaluates every segment for every customer (as
after a deployment, or a new segment); how long a shop's segment sizes take to
answer; and a routine recheck of the timed segments. The cost of keeping
segments current as events arrive is measured on the first customers, with and
without the segment stage, in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from bench.record import cpu_model, write_results
from crmstream.settings import Settings
from handlers.keys import Keys
from handlers.pipeline import ProfilesAndTriggers
from schemas.decode import Decoder
from schemas.events import Envelope
from streams.cli.local_stack import with_local_hash_key

SHOP = "bench-shop"
REGIONS = ("华东", "华北", "华南", "西南")
_BATCH = 5000


def customer_events(n: int, rng: random.Random, now: datetime) -> list[dict[str, Any]]:
    who = f"c{n:07d}"
    joined = now - timedelta(days=rng.uniform(30, 400))

    def event(kind: str, at: datetime, data: dict[str, Any], k: int) -> dict[str, Any]:
        return {
            "specversion": "1.0", "id": f"{who}-{k}", "source": "bench", "type": kind,
            "time": at.isoformat(), "shop": SHOP, "subject": who, "data": data,
        }  # fmt: skip

    consents = {"marketing": True, "sms": rng.random() < 0.7, "push": True}
    profile: dict[str, Any] = {"consents": consents, "region": rng.choice(REGIONS)}
    if rng.random() < 0.02:
        profile["tags"] = ["vip-list"]
    events = [event("customer.registered", joined, profile, 0)]
    if rng.random() < 0.2:
        item = {"item_id": f"sku-{rng.randrange(500)}", "category": "tea"}
        events.append(event("item.favorited", joined + timedelta(hours=1), item, 1))
        return events
    for k in range(rng.choice((1, 1, 1, 2, 3, 6))):
        at = joined + timedelta(days=rng.uniform(0, (now - joined).days))
        price = f"{rng.choice((49, 99, 199, 599, 1999))}.00"
        line = {"item_id": f"sku-{rng.randrange(500)}", "category": "tea", "qty": 1, "price": price}
        data = {"order_id": f"{who}-o{k}", "items": [line], "total": price}
        events.append(event("order.placed", at, data, 2 + k))
    return events


async def load(sink: ProfilesAndTriggers, customers: int, live: int) -> dict[str, float]:
    """The profiles; the first ``live`` customers also through the segment stage, timed."""
    decoder = Decoder()
    rng = random.Random(2026)
    now = datetime.now(UTC)
    not_after = decoder.not_after(now)
    batch: list[Envelope] = []
    spent = {"profiles_s": 0.0, "segments_s": 0.0, "live_events": 0.0, "events": 0.0}
    keys = sink.keys

    async def flush(with_segments: bool) -> None:
        started = time.perf_counter()
        applied = await sink.profiles.apply(batch, sink.segments.watched)
        middle = time.perf_counter()
        if with_segments:
            await sink.segments.on_batch(applied.touched, applied.changed)
            spent["profiles_s"] += middle - started
            spent["segments_s"] += time.perf_counter() - middle
            spent["live_events"] += len(batch)
        else:  # what the segment stage would index, for the rechecks to find them
            pipe = sink.profiles.client.pipeline(transaction=False)
            for (shop, who), (at_ms, _event) in applied.touched.items():
                seen = keys.segment_seen(keys.trigger_shard(shop, who))
                pipe.zadd(seen, {f"{shop}:{who}": at_ms}, gt=True)
            await pipe.execute()
        spent["events"] += len(batch)
        batch.clear()

    for n in range(customers):
        batch.extend(
            decoder.require(orjson.dumps(raw), not_after) for raw in customer_events(n, rng, now)
        )
        if len(batch) >= _BATCH:
            await flush(with_segments=n < live)
        if n and n % 100_000 == 0:
            print(f"  {n:,} customers loaded", flush=True)
    if batch:
        await flush(with_segments=customers <= live)
    return spent


async def run(customers: int) -> dict[str, Any]:
    # In this process, as a worker the command line starts: with the local stack's key.
    base = with_local_hash_key(Settings())
    run_id = uuid.uuid4().hex[:8]
    settings = base.model_copy(
        update={"redis": base.redis.model_copy(update={"key_prefix": f"bench-seg-{run_id}"})}
    )
    sink = ProfilesAndTriggers.from_settings(settings)
    client, keys = sink.profiles.client, Keys(settings.redis.key_prefix)
    memory_before = (await client.info("memory"))["used_memory"]
    try:
        spent = await load(sink, customers, live=min(customers, 50_000))
        started = time.perf_counter()
        first = await sink.segments.recheck(int(time.time() * 1000))
        first_s = time.perf_counter() - started
        memory_after = (await client.info("memory"))["used_memory"]
        timings = []
        for _ in range(200):
            started = time.perf_counter()
            sizes = await sink.segment_reader.sizes(SHOP)
            timings.append((time.perf_counter() - started) * 1000)
        timings.sort()
        started = time.perf_counter()
        report = await sink.segments.recheck(int(time.time() * 1000))
        recheck_s = time.perf_counter() - started
    finally:
        doomed: list[bytes] = []
        async for key in client.scan_iter(match=keys.pattern(), count=5000):
            doomed.append(key)
            if len(doomed) == 5000:
                await client.unlink(*doomed)
                doomed.clear()
        if doomed:
            await client.unlink(*doomed)
        await sink.close()
    return {
        "customers": customers,
        "events": int(spent["events"]),
        # Events through profiles and segments, and the segment stage's share of that time.
        "live_events_per_second": spent["live_events"]
        / (spent["profiles_s"] + spent["segments_s"]),
        "segment_share_of_live": spent["segments_s"] / (spent["profiles_s"] + spent["segments_s"]),
        "first_recheck": {
            "customers": first.customers,
            "changes": first.changes,
            "seconds": first_s,
            "customers_per_second": first.customers / first_s if first_s else None,
            "segments": [s.segment.id for s in sink.segments.segments.segments],
        },
        "sizes": sizes,
        "sizes_ms": {
            "median": statistics.median(timings),
            "p99": timings[int(len(timings) * 0.99) - 1],
            "max": timings[-1],
        },
        "recheck": {
            "customers": report.customers,
            "changes": report.changes,
            "seconds": recheck_s,
            "customers_per_second": report.customers / recheck_s if recheck_s else None,
            "segments": [s.segment.id for s in sink.segments.segments.timed],
        },
        "redis_bytes_per_customer": (memory_after - memory_before) / customers,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    args = parser.parse_args()
    results = asyncio.run(run(args.customers))
    print(f"machine: {cpu_model()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    sizes = results["sizes_ms"]
    recheck = results["recheck"]
    first = results["first_recheck"]
    print(
        f"  {results['customers']:,} customers ({results['events']:,} events); profiles and "
        f"segments kept live at {results['live_events_per_second']:,.0f} ev/s in one process, "
        f"segments {results['segment_share_of_live']:.0%} of that time\n"
        f"  first recheck, all {len(first['segments'])} segments over {first['customers']:,} "
        f"customers: {first['seconds']:.1f} s ({first['customers_per_second']:,.0f}/s), "
        f"{first['changes']:,} changes\n"
        f"  segment sizes: median {sizes['median']:.2f} ms, p99 {sizes['p99']:.2f} ms, "
        f"max {sizes['max']:.2f} ms ({results['sizes']})\n"
        f"  recheck of {len(recheck['segments'])} timed segments over {recheck['customers']:,} "
        f"customers: {recheck['seconds']:.1f} s ({recheck['customers_per_second']:,.0f}/s), "
        f"{recheck['changes']:,} changes\n"
        f"  Redis: {results['redis_bytes_per_customer']:,.0f} B per customer (profile + segments)"
    )
    write_results("segments", **results)


if __name__ == "__main__":
    main()
