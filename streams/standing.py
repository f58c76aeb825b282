"""Where each of a worker's event partitions stands after a fetch: what event time
(handlers/timing/clock.py) is told of the topics still being read, and of those caught up."""

from __future__ import annotations

import time

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import IllegalStateError

from crmstream import metrics


async def partition_standing(
    consumer: AIOKafkaConsumer, away_ms: float, stalled_ms: int
) -> tuple[dict[tuple[str, int], int | None], dict[tuple[str, int], int]]:
    """Where each assigned partition stands: those with records past what was handed out,
    and how many (None: unknown, since not fetched from yet, or caught up by a word of the
    broker's older than ``away_ms``: a broker away must not pass for a quiet one); and
    those caught up, with when the broker last answered so (epoch ms)."""
    lagging: dict[tuple[str, int], int | None] = {}
    heard: dict[tuple[str, int], int] = {}
    now_ms = time.time() * 1000
    for partition in consumer.assignment():
        highwater = consumer.highwater(partition)
        try:
            lag = None if highwater is None else highwater - await consumer.position(partition)
            heard_ms = consumer.last_poll_timestamp(partition)
        except IllegalStateError:
            continue  # taken away by a rebalance meanwhile
        if lag is not None:
            metrics.CONSUMER_LAG.labels(partition.topic, str(partition.partition)).set(lag)
            if lag == 0 and (heard_ms is None or now_ms - heard_ms > away_ms):
                lag = None
        if lag is None or lag > 0:
            lagging[(partition.topic, partition.partition)] = lag
        else:
            # Stamped when the loop took the answer, which may have waited for it: only as
            # of the longest stall before is the partition known to have been caught up.
            heard[(partition.topic, partition.partition)] = int(heard_ms) - stalled_ms
    return lagging, heard
