"""Decode + validate throughput on one core, against plain JSON parsing in the same run.

    python -m bench.decode [--events 100000] [--repeats 5]

Timed here, never in a test: the figures are medians of several runs, and the
ratio to orjson.loads (measured in the same process, on the same bytes) is the
number to compare across machines.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime

import orjson

from bench.record import cpu_model, write_results
from schemas.decode import EVENT_ADAPTER, Decoder
from schemas.events import STREAM_OF_TYPE
from storefront.publisher import encode, partition_key
from storefront.simulator import SimulationConfig, Simulator


def _rate(run: Callable[[], None], count: int, repeats: int) -> tuple[float, float, float]:
    """Median, min and max events per second over ``repeats`` runs."""
    rates = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        rates.append(count / (time.perf_counter() - started))
    return statistics.median(rates), min(rates), max(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    events = list(Simulator(SimulationConfig(seed=1, customers_per_shop=2000)).events(args.events))
    records = [(encode(e), partition_key(e), STREAM_OF_TYPE[e["type"]]) for e in events]
    values = [value for value, _, _ in records]
    decoder = Decoder()
    not_after = decoder.not_after(datetime.now(UTC))
    validate_json = EVENT_ADAPTER.validate_json

    def parse_only() -> None:
        for value in values:
            orjson.loads(value)

    def validate_only() -> None:
        for value in values:
            validate_json(value)

    def full_decode() -> None:
        decode = decoder.decode
        for value, key, stream in records:
            decode(value, key, stream, not_after)

    results = {
        "orjson.loads (ceiling)": _rate(parse_only, len(values), args.repeats),
        "pydantic validate_json": _rate(validate_only, len(values), args.repeats),
        "crmstream decode": _rate(full_decode, len(values), args.repeats),
    }
    ours = results["crmstream decode"][0]
    print(f"{len(values):,} events, {args.repeats} runs each, one core ({cpu_model()})")
    for name, (median, low, high) in results.items():
        print(f"  {name:<24} {median:>10,.0f} ev/s  [{low:,.0f} .. {high:,.0f}]  "
              f"ratio to crmstream {median / ours:.2f}")  # fmt: skip
    write_results(
        "decode",
        events=len(values),
        repeats=args.repeats,
        events_per_second={
            k: {"median": m, "min": lo, "max": hi} for k, (m, lo, hi) in results.items()
        },
    )


if __name__ == "__main__":
    main()
