"""The per-customer counter job as a bytewax dataflow, one Redis pipeline per output batch.

Run by the harness as ``python -m bench.peers.bytewax_counters`` in bench/.venv-peers, one
worker, configured by the BENCH_PEER_* variables (see bench.peers). The same dataflow runs under
bytewax's own launcher as ``python -m bytewax.run "bench.peers.bytewax_counters:build_flow()"``.

SIGTERM keeps its default action and ends the process at once: every batch is written before
the next is read and no offsets are stored, so there is nothing to flush on the way out
(SIGINT would only turn into an error from inside the Kafka source).
"""

from __future__ import annotations

import functools
import os

import bytewax.operators as op
import redis
from bytewax.connectors.kafka import KafkaSource, KafkaSourceMessage
from bytewax.dataflow import Dataflow
from bytewax.outputs import DynamicSink, StatelessSinkPartition
from bytewax.run import cli_main
from confluent_kafka import OFFSET_BEGINNING

from bench.peers.counters import Update, parse, write


def _parse(message: KafkaSourceMessage, prefix: str) -> Update:
    return parse(message.value, prefix)


class _CountersPartition(StatelessSinkPartition):
    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self._client = client
        self._prefix = prefix

    def write_batch(self, items: list[Update]) -> None:
        write(self._client, self._prefix, items, len(items))


class RedisCounters(DynamicSink):
    """Each worker writes the batches it is handed straight to Redis, one pipeline apiece."""

    def __init__(self, url: str, prefix: str) -> None:
        self._url = url
        self._prefix = prefix

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _CountersPartition:
        return _CountersPartition(redis.Redis.from_url(self._url), self._prefix)


def build_flow() -> Dataflow:
    env = os.environ
    prefix = env["BENCH_PEER_PREFIX"]
    source = KafkaSource(
        brokers=env["BENCH_PEER_BOOTSTRAP"].split(","),
        topics=env["BENCH_PEER_TOPICS"].split(","),
        starting_offset=OFFSET_BEGINNING,
        # bytewax assigns partitions itself and keeps offsets in its recovery store (none here),
        # never in a consumer group, so the group name can only label the client.
        add_config={"client.id": env["BENCH_PEER_GROUP"]},
    )
    flow = Dataflow("peer_counters")
    messages = op.input("kafka", flow, source)
    updates = op.map("parse", messages, functools.partial(_parse, prefix=prefix))
    op.output("redis", updates, RedisCounters(env["BENCH_PEER_REDIS_URL"], prefix))
    return flow


if __name__ == "__main__":
    cli_main(build_flow(), workers_per_process=1)
