"""Kafka's committed offsets, as the worker tells the group what it has done.

A sink that keeps offsets with its state (handlers/offsets.py) is where a worker resumes
from; Kafka's commits then only follow it, for the group's lag and for tools. They are
made at most every ``COMMIT_EVERY_S`` while batches come (a commit is a round trip to the
broker that the next batch would wait for), and whenever the worker is idle, gives
partitions up or stops. A sink that keeps no offsets commits after every batch: Kafka's
offsets are then the only record of what was done.
"""

from __future__ import annotations

import logging
import time
from typing import Final

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError
from aiokafka.structs import OffsetAndMetadata

log = logging.getLogger("crmstream.consumer")
COMMIT_EVERY_S: Final = 1.0


class KafkaCommits:
    def __init__(self, *, every_batch: bool) -> None:
        self._every_batch = every_batch
        # Partitions taken up where the sink's store said, until a commit covers them: an
        # owner that recorded its last batch and stopped before committing it to Kafka left
        # the store ahead, and with nothing more to read no batch would commit it.
        self._resumed: dict[TopicPartition, int] = {}
        # Offsets the store recorded that Kafka has not been told of yet.
        self._recorded: dict[TopicPartition, OffsetAndMetadata] = {}
        self._next_commit = 0.0  # monotonic

    @property
    def owed(self) -> bool:
        """Something done that Kafka has not heard of."""
        return bool(self._resumed or self._recorded)

    def resumed(self, partition: TopicPartition, offset: int) -> None:
        """``partition`` was taken up at ``offset``, where the sink's store said."""
        self._resumed[partition] = offset

    async def batch_done(
        self, consumer: AIOKafkaConsumer, offsets: dict[TopicPartition, OffsetAndMetadata]
    ) -> None:
        """A batch's effects are in, up to ``offsets``: committed now, or within
        ``COMMIT_EVERY_S`` where the store holds them."""
        self._recorded.update(offsets)
        if self._every_batch or time.monotonic() >= self._next_commit:
            await self.commit(consumer)

    async def commit(self, consumer: AIOKafkaConsumer) -> None:
        """Commit what is owed, for the partitions still assigned (between batches)."""
        assigned = consumer.assignment()
        pending = {tp: OffsetAndMetadata(at, "") for tp, at in self._resumed.items()
                   if tp in assigned}  # fmt: skip
        pending.update({tp: at for tp, at in self._recorded.items() if tp in assigned})
        self._resumed.clear()
        self._recorded.clear()
        self._next_commit = time.monotonic() + COMMIT_EVERY_S
        if not pending:
            return
        try:
            await consumer.commit(pending)
        except (CommitFailedError, IllegalStateError):
            log.warning("a commit was refused by a rebalance; the next owner makes it")
