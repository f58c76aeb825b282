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

from bench.contenders import crmstream
from bench.harness import FULL, Workspace
from bench.record import cpu_model, write_results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rates: dict[str, list[float]] = {"with metrics": [], "without metrics": []}
    with Workspace.open("metrics") as space:
        space.preload(args.events, customers_per_shop=3_000)
        print(f"{args.events:,} events pre-loaded into {space.settings.topics.prefix}.events.*")
        for n in range(-1, args.rounds * 2):
            metrics_on = n < 0 or (n % 4) in (0, 3)
            label = "with metrics" if metrics_on else "without metrics"
            switch = {"CRMSTREAM_METRICS_ENABLED": "true" if metrics_on else "false"}
            rate = crmstream(space, FULL, extra_env=switch).rate
            if n >= 0:
                rates[label].append(rate)
            print(f"  {label:<16} {rate:>9,.0f} ev/s{'  (warm-up)' if n < 0 else ''}", flush=True)
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
