"""The rules over one batch of applied events, in one round trip whatever its size (two
if the profile call did not give back every profile they read, ``read_request``): one
writes what the rules decided (handlers/triggers/writer.py): the guards and the outbox, timers and
cancellations, the schedules' indexes, shard by shard and partition by partition."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

from handlers.functions.timers import PutOff
from handlers.keys import Keys
from handlers.profile.read import ProfileReader, ReadBack
from handlers.timing import PartitionTiming
from handlers.triggers.goals import queue_goals
from handlers.triggers.indexes import INDEXED_TYPES, index_updates
from handlers.triggers.stage import TriggerStage
from handlers.triggers.work import BatchWork
from handlers.triggers.writer import TriggerWriter
from schemas.events import Envelope


class TriggerBatch:
    def __init__(
        self,
        stage: TriggerStage,
        *,
        reader: ProfileReader,
        timing: PartitionTiming,
        writer: TriggerWriter,
        keys: Keys,
        hash_key: bytes | None,
    ) -> None:
        self.stage = stage
        self.reader = reader
        self.timing = timing
        self.writer = writer
        self.keys = keys
        self._hash_key = hash_key

    def read_request(
        self, relevant: Sequence[tuple[Envelope, int]]
    ) -> tuple[frozenset[str], frozenset[tuple[str, str]]]:
        """What ``on_events`` will read of the profiles of ``relevant`` events (as
        TriggerStage.relevant gives them), as far as it can be told before they are applied:
        the sections (the partitions' timing may still move) and the customers."""
        stage = self.stage
        if not relevant:
            return frozenset(), frozenset()
        deferring = {p: self.timing.would_defer(p) for p in {p for _, p in relevant}}
        customers = frozenset((event.shop, event.who) for event, _ in relevant)
        return stage.sections(relevant, deferring), customers

    async def on_events(
        self,
        events: Sequence[Envelope],
        partitions: Sequence[int] | None = None,
        known: ReadBack | None = None,
        relevant: Sequence[tuple[Envelope, int]] | None = None,
        put_off: Mapping[int, Sequence[PutOff]] | None = None,
    ) -> Counter[str]:
        """Arm, cancel and emit what this batch causes; returns outcomes by name.
        ``partitions``: the partition each event was read from (all 0 if not given);
        ``known``: profiles read back already, as the batch left them; ``relevant``: what
        TriggerStage.relevant gives for them, if worked out already; ``put_off``: more
        entries to put off by partition (the journeys'), written with the rest."""
        stage = self.stage
        where = partitions if partitions is not None else [0] * len(events)
        if relevant is None:
            relevant = stage.relevant(events, where)
        indexed = [
            (event, partition)
            for event, partition in zip(events, where, strict=True)
            if event.type in INDEXED_TYPES  # type: ignore[attr-defined]
        ]
        work = BatchWork()
        for partition, entries in (put_off or {}).items():
            work.timer_ops[partition].extend(entries)
        queue_goals(stage.goals, stage.keys, events, work.shards)
        if not relevant and not indexed and not work.shards:
            if work.timer_ops:
                await self.writer.submit(work)
            return Counter()
        # Behind on a partition, its decisions wait for its event time (handlers/timing).
        deferring = {p: self.timing.defer(p) for p in {p for _, p in relevant}}
        customers = [(event.shop, event.who) for event, _ in relevant]
        sections = stage.sections(relevant, deferring)
        stored = await self.reader.read_stored(customers, sections, known) if relevant else {}
        outcomes = stage.evaluate(relevant, deferring, stored, work)
        absence = stage.rules.absence_ids
        indexing = index_updates(self.keys, indexed, absence, self._hash_key)
        for partition, ops in indexing.timer_ops.items():
            work.timer_ops[partition].extend(ops)
        outcomes.update(await self.writer.submit(work, indexing))
        return outcomes
