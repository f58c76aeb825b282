"""The per-customer counter job as a quixstreams application, one Redis pipeline per sink batch.

Run by the harness as ``python -m bench.peers.quix_counters`` in bench/.venv-peers, configured
by the BENCH_PEER_* variables (see bench.peers). Application.run stops cleanly on SIGTERM.
"""

from __future__ import annotations

import functools
import os
import tempfile

import redis
from quixstreams import Application
from quixstreams.sinks import BatchingSink, SinkBatch

from bench.peers.counters import parse, write


class RedisCounters(BatchingSink):
    """Sends each topic partition's batch, accumulated between checkpoints, as one pipeline."""

    def __init__(self, url: str, prefix: str) -> None:
        super().__init__()
        self._client = redis.Redis.from_url(url)
        self._prefix = prefix

    def write(self, batch: SinkBatch) -> None:
        write(self._client, self._prefix, (item.value for item in batch), batch.size)


def main() -> None:
    env = os.environ
    prefix = env["BENCH_PEER_PREFIX"]
    # Nothing here is stateful, but quixstreams would otherwise create ./state in the repository.
    with tempfile.TemporaryDirectory(prefix="quix-peer-") as state_dir:
        app = Application(
            broker_address=env["BENCH_PEER_BOOTSTRAP"],
            consumer_group=env["BENCH_PEER_GROUP"],
            auto_offset_reset="earliest",
            # Sinks flush at each checkpoint, so these bound a batch: every second or 10,000
            # messages, whichever comes first. Time alone lets a backlog pile up into one
            # flush that stalls reading; much smaller checkpoints commit offsets too often.
            commit_interval=1.0,
            commit_every=10_000,
            state_dir=state_dir,
            loglevel="WARNING",
        )
        sink = RedisCounters(env["BENCH_PEER_REDIS_URL"], prefix)
        # One dataframe per topic into a shared sink: concat() would add time alignment
        # across topics, which this job does not need.
        for name in env["BENCH_PEER_TOPICS"].split(","):
            topic = app.topic(name, value_deserializer="bytes")
            app.dataframe(topic).apply(functools.partial(parse, prefix=prefix)).sink(sink)
        app.run()


if __name__ == "__main__":
    main()
