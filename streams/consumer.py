"""The ingest consumer: the event topics read in batches, offsets committed after Redis.

Faust runs the worker (its lifecycle, web views, producer, signals), but its
per-message stream machinery tops out near 10,000 events/s on this hardware
while aiokafka's ``getmany`` hands over a whole fetch at once (bench/profiles).
So the hot path is a Faust-managed service around an aiokafka consumer:

- one consumer group (``<app id>.events``) over the five event topics;
- a batch is decoded, dead-lettered and handed to the sink as a whole; a sink
  that keeps offsets with its state (handlers/offsets.py) records them after the
  batch's effects, and only then are they committed to Kafka, so a crash replays
  the batch (the sink is idempotent) and nothing is lost. Where the store keeps
  them, Kafka's commits only follow it (streams/commits.py);
- a worker resumes a partition from the offsets the sink's store holds, and reads
  again from there whenever the store turns out to have lost recent writes;
- while Redis applies one batch, the next is fetched and decoded; batches still
  reach Redis, and commit, strictly one after the other;
- if Redis is down the batch is retried with backoff: consumption simply waits,
  and the group keeps its members alive through aiokafka's background heartbeat;
- a rebalance waits for the batch in flight, which commits before it lets go
  (streams/rebalance.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.errors import KafkaError
from aiokafka.structs import OffsetAndMetadata
from mode import Service
from redis.exceptions import RedisError

from crmstream import metrics
from crmstream.admin import appended_topics
from crmstream.errors import CrmStreamError, StateBehindError
from crmstream.settings import Settings
from crmstream.topics import TopicNames
from handlers.sink import KeepsOffsets
from streams.app import aiokafka_options
from streams.commits import KafkaCommits
from streams.ingest import Decoded, Ingest
from streams.loop_stalls import LoopStalls
from streams.rebalance import WaitForBatch
from streams.standing import partition_standing

log = logging.getLogger("crmstream.consumer")
_IDLE_FETCH_MS = 100
_IDLE_STATE_CHECK_S = 1.0


class EventConsumer(Service):
    """Reads the event topics in batches and feeds them to :class:`Ingest`."""

    def __init__(self, settings: Settings, ingest: Ingest, **kwargs: Any) -> None:  # noqa: ANN401 -- mode's Service options
        super().__init__(**kwargs)
        self._settings = settings
        self._away_ms = settings.triggers.broker_away_s * 1000
        self._stalls = LoopStalls(int(settings.triggers.timer_allowance_window_s * 1000))
        self.ingest = ingest
        # Held by a batch from its hand-over to its commit, and by a rebalance.
        self.lock = asyncio.Lock()
        self._consumer: AIOKafkaConsumer | None = None
        # Set by a batch whose sink found its store behind: where to read again from.
        self._read_again: dict[TopicPartition, int] = {}
        self._next_state_check = 0.0  # monotonic
        self.commits = KafkaCommits(every_batch=not isinstance(ingest.sink, KeepsOffsets))

    @property
    def consumer(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            raise RuntimeError("the event consumer has not started")
        return self._consumer

    @property
    def partitions(self) -> int:
        """Partitions assigned to this worker now (0 before it has joined the group)."""
        return len(self._consumer.assignment()) if self._consumer is not None else 0

    async def on_start(self) -> None:
        worker = self._settings.worker
        try:
            self.ingest.appended = await asyncio.get_running_loop().run_in_executor(
                None, appended_topics, self._settings
            )
        except CrmStreamError as exc:
            # Safe without: every topic then waits the fixed write delay, as records
            # stamped by their producer do.
            log.warning("cannot read the event topics' timestamp type: %s", exc)
        stamped_by_producer = set(TopicNames.from_settings(self._settings.topics).events)
        stamped_by_producer -= self.ingest.appended
        if stamped_by_producer:
            log.warning(
                "records of %s carry their producer's timestamp: decisions there wait "
                "CRMSTREAM_TRIGGERS_TIMER_WRITE_DELAY_S for writes still on their way "
                "(`crmstream topics create` sets message.timestamp.type=LogAppendTime)",
                ", ".join(sorted(stamped_by_producer)),
            )
        consumer = AIOKafkaConsumer(
            **aiokafka_options(self._settings.kafka),
            group_id=f"{worker.app_id}.events",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=worker.batch_max,
            # A caught-up partition's event time moves on with the broker's answers that it
            # has nothing more (handlers/timing/clock.py): an idle fetch answers this soon.
            fetch_max_wait_ms=_IDLE_FETCH_MS,
            session_timeout_ms=int(worker.session_timeout_s * 1000),
            heartbeat_interval_ms=int(min(3.0, worker.session_timeout_s / 3) * 1000),
            # Partition p of every event topic to the same worker: a customer's browse, cart,
            # order, review and customer events (keyed alike) are all read by one worker,
            # whose event time then covers everything its rules look at.
            partition_assignment_strategy=(RangePartitionAssignor,),
        )
        consumer.subscribe(
            list(TopicNames.from_settings(self._settings.topics).events),
            listener=WaitForBatch(self),
        )
        self._consumer = consumer
        self._stalls.start(asyncio.get_running_loop())
        await consumer.start()
        self.add_future(self._consume(consumer))

    async def on_stop(self) -> None:
        self._stalls.stop()
        if self._consumer is not None:
            async with self.lock:
                with contextlib.suppress(KafkaError):  # the broker away: the store has them
                    await self.commits.commit(self._consumer)
                await self._consumer.stop()

    async def _consume(self, consumer: AIOKafkaConsumer) -> None:
        """Fetch and decode the next batch while Redis works on the one before it."""
        within_ms = int(self._settings.worker.batch_within_s * 1000)
        batch_max = self._settings.worker.batch_max
        in_flight: asyncio.Task[None] | None = None
        try:
            while not self.should_stop:
                fetched = await consumer.getmany(timeout_ms=within_ms, max_records=batch_max)
                if in_flight is not None and (not fetched or in_flight.done()):
                    await in_flight
                    in_flight = None
                if not fetched:
                    if in_flight is None:
                        await self._idle(consumer)
                    continue
                decoded = self.ingest.decode([r for part in fetched.values() for r in part])
                decoded.written = {
                    (tp.topic, tp.partition): max(r.timestamp for r in part)
                    for tp, part in fetched.items()
                }
                decoded.behind, decoded.heard = await partition_standing(
                    consumer, self._away_ms, self._stalled_ms()
                )
                offsets = {
                    partition: OffsetAndMetadata(part[-1].offset + 1, "")
                    for partition, part in fetched.items()
                }
                if in_flight is not None:
                    # Batches reach Redis and commit one after the other, in order.
                    await in_flight
                if self._read_again:
                    self._rewind(consumer, fetched)
                    in_flight = None
                    continue
                in_flight = asyncio.ensure_future(self._finish(consumer, decoded, offsets))
        finally:
            if in_flight is not None:
                await in_flight

    def _stalled_ms(self) -> int:
        stalled = self._stalls.most_ms()
        metrics.EVENT_LOOP_STALL.set(stalled / 1000)
        return stalled

    async def _idle(self, consumer: AIOKafkaConsumer) -> None:
        """Nothing came: the assigned partitions are caught up or quiet, and their event
        time may move on (a worker with only empty partitions holds nobody back)."""
        if self._read_again:
            self._rewind(consumer, {})
        await self._check_state(consumer)
        await self._commit_when_idle(consumer)
        behind, heard = await partition_standing(consumer, self._away_ms, self._stalled_ms())
        self.ingest.observe({}, behind, {}, heard)

    async def _check_state(self, consumer: AIOKafkaConsumer) -> None:
        """Now and then while idle, as before every batch: does Redis still hold what this
        worker recorded? A Redis that lost writes while no batch came is read up to date
        again too, before its timers are walked on it (they check it as well)."""
        sink = self.ingest.sink
        now = time.monotonic()
        if not isinstance(sink, KeepsOffsets) or now < self._next_state_check:
            return
        self._next_state_check = now + _IDLE_STATE_CHECK_S
        try:
            async with self.lock:
                await sink.check_offsets([(tp.topic, tp.partition) for tp in consumer.assignment()])
        except StateBehindError as behind:
            log.warning("%s", behind)
            metrics.STATE_REWINDS.inc()
            self._read_again = {TopicPartition(t, p): at for (t, p), at in behind.positions.items()}
        except (RedisError, OSError) as error:
            log.debug("state not checked while idle: %s", error)  # the next batch waits

    async def _commit_when_idle(self, consumer: AIOKafkaConsumer) -> None:
        """Idle: Kafka's committed offsets catch up with what the store holds: batches
        recorded since the last commit, and partitions taken up where the store said (or
        the group's lag would show them behind for good)."""
        if self.commits.owed:
            async with self.lock:
                await self.commits.commit(consumer)

    def _rewind(self, consumer: AIOKafkaConsumer, unread: dict[TopicPartition, list[Any]]) -> None:
        """The store lost writes: read its partitions again from where it stands, and the
        batch fetched meanwhile again from its start."""
        positions = dict(self._read_again)
        for partition, records in unread.items():
            positions.setdefault(partition, records[0].offset)
        self._read_again.clear()
        assigned = consumer.assignment()
        for partition, offset in positions.items():
            if partition in assigned:
                consumer.seek(partition, offset)
        log.warning(
            "reading again from %s",
            ", ".join(f"{tp.topic}[{tp.partition}]@{at}" for tp, at in positions.items()),
        )

    async def _finish(
        self,
        consumer: AIOKafkaConsumer,
        decoded: Decoded,
        offsets: dict[TopicPartition, OffsetAndMetadata],
    ) -> None:
        async with self.lock:
            # A rebalance can take partitions between this batch's fetch and its turn here:
            # their next owner reads them from what their state recorded, and this worker
            # must not touch their state any more. Only what is still ours goes on.
            assigned = consumer.assignment()
            ours = {partition: at for partition, at in offsets.items() if partition in assigned}
            if len(ours) < len(offsets):
                log.warning(
                    "%d of %d partitions of a batch were taken by a rebalance before it was "
                    "handled; their next owner reads them",
                    len(offsets) - len(ours),
                    len(offsets),
                )
                decoded = decoded.only({(tp.topic, tp.partition) for tp in ours})
            if not ours:
                return
            try:
                await self.ingest.deliver(
                    decoded, {(tp.topic, tp.partition): at.offset for tp, at in ours.items()}
                )
            except StateBehindError as behind:
                log.warning("%s", behind)
                metrics.STATE_REWINDS.inc()
                self._read_again = {
                    TopicPartition(t, p): at for (t, p), at in behind.positions.items()
                }
                # The rest of the batch is read again too: none of it may be assumed.
                for record in decoded.batch:
                    tp = TopicPartition(record.topic, record.partition)
                    self._read_again.setdefault(tp, record.offset)
                    self._read_again[tp] = min(self._read_again[tp], record.offset)
                return
            await self.commits.batch_done(consumer, ours)
