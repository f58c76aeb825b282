"""Memory: Redis bytes per profile (typical and heavy), and whether a worker's RSS stays flat.

The worker drains a million simulated events over 150,000 customers (about seven
events each, as a marketplace shop's customers mostly have a handful); its resident
memory is read when it has handled 100,000 events, on the way, and at the end.
Bytes per profile are MEMORY USAGE over every key of a sample of customers.
"""

from __future__ import annotations

import subprocess
from collections import defaultdict
from typing import Any

from bench.contenders import crmstream
from bench.harness import FULL, Workspace, rss_bytes
from handlers.keys import CUSTOMER_KEYS, Keys
from handlers.redis_client import SyncRedisClient
from storefront.simulator import SHOPS

_SAMPLE = 20_000
_PROFILE_HASH = CUSTOMER_KEYS.profile.encode()
MARKS = (100_000, 250_000, 500_000, 750_000, 1_000_000)


def profile_bytes(client: SyncRedisClient, keys: Keys, sample: int = _SAMPLE) -> dict[str, float]:
    """Bytes per profile over the keys of up to ``sample`` customers: each key under a
    customer's hash tag, for the customers (and anonymous shoppers) that have a profile
    hash; what lives in the trigger shards (memberships, cooldowns, outboxes) is not in it."""
    names: defaultdict[bytes, list[bytes]] = defaultdict(list)
    for key in client.scan_iter(match=f"{keys.prefix}:{{*:*}}:*", count=5000):
        tag = key[: key.index(b"}") + 2]
        if tag in names or len(names) < sample:
            names[tag].append(key)
    profiles = [tagged for tag, tagged in names.items() if tag + _PROFILE_HASH in tagged]
    pipe = client.pipeline(transaction=False)
    for tagged in profiles:
        for key in tagged:
            pipe.memory_usage(key, samples=0)
    sizes_of_keys = iter(pipe.execute())
    sizes = sorted(sum(int(next(sizes_of_keys) or 0) for _ in tagged) for tagged in profiles)
    if not sizes:
        return {}
    return {
        "profiles": len(sizes),
        "median_bytes": sizes[len(sizes) // 2],
        "p90_bytes": sizes[int(len(sizes) * 0.9)],
        "p99_bytes": sizes[int(len(sizes) * 0.99)],
        "max_bytes": sizes[-1],
    }


def run(events: int = MARKS[-1], customers_per_shop: int = 50_000) -> dict[str, Any]:
    marks = sorted({mark for mark in MARKS if mark < events} | {events})
    rss: dict[int, int] = {}

    def on_progress(seen: int, procs: list[subprocess.Popen[bytes]]) -> None:
        for mark in marks:
            if seen >= mark and mark not in rss:
                rss[mark] = rss_bytes(procs[0].pid)

    with Workspace.open("memory") as space:
        print(f"memory: pre-loading {events:,} events", flush=True)
        space.preload(events, customers_per_shop)
        done = crmstream(space, FULL, keep=True, on_progress=on_progress)
        per_profile = profile_bytes(space.client, done.keys)
        space.forget(done.keys.pattern())
    first, last = rss[marks[0]], rss[marks[-1]]
    return {
        "events": events,
        "population": customers_per_shop * len(SHOPS),
        "events_per_second": done.rate,
        "worker_rss_bytes": {str(mark): size for mark, size in sorted(rss.items())},
        "rss_growth": (last - first) / first,
        "redis_bytes_per_profile": per_profile,
    }
