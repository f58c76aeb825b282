"""The worker's default sink: profiles first, then the segments and rules that read them.

The stages are idempotent, so a batch handed over again after a crash changes
nothing twice: the profile stage skips what it has seen, and a trigger it
already emitted keeps its id and is refused as a duplicate.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time as _wall
import uuid
from collections import Counter
from collections.abc import Awaitable, Collection, Iterable, Mapping, Sequence
from datetime import datetime

from crmstream import metrics
from crmstream.errors import StateBehindError
from crmstream.settings import Settings
from handlers.backlog import Backlog, read_backlog, read_sizes_by_shop
from handlers.due_walk import DueWalk
from handlers.functions.timers import PutOff
from handlers.journeys.runner import JourneyRunner
from handlers.journeys.store import JourneyStore
from handlers.keys import Keys
from handlers.offsets import OffsetStore, TopicPartition
from handlers.profile.read import ProfileReader, ReadBack, key_kinds
from handlers.profile.send import ReadRequest
from handlers.profile.stage import BatchOutcome, ProfileStage
from handlers.redis_client import RedisClient
from handlers.replication import Replication
from handlers.rule_sets import load_journey_set, load_rule_set, load_segment_set, reload_sets
from handlers.segments.read import SegmentReader
from handlers.segments.stage import SegmentStage
from handlers.timing import Allowances, PartitionTiming, timers_library
from handlers.triggers.batch import TriggerBatch
from handlers.triggers.due import DueDecider
from handlers.triggers.held import HeldTriggers
from handlers.triggers.schedules import Scheduler
from handlers.triggers.stage import TriggerStage
from handlers.triggers.writer import TriggerWriter
from rules.journey_loader import JourneySet
from rules.loader import RuleSet
from schemas.events import Envelope
from schemas.times import epoch_ms

log = logging.getLogger("crmstream.pipeline")


class ProfilesAndTriggers:
    """An EventSink: the profile stage, then the segment and trigger stages, on the same
    Redis client; the partitions' time (handlers/timing) owned in one place."""

    def __init__(
        self,
        profiles: ProfileStage,
        stage: TriggerStage,
        segments: SegmentStage,
        settings: Settings,
        reader: ProfileReader,
        *,
        journeys: JourneySet | None = None,
    ) -> None:
        self.profiles = profiles
        self.stage = stage
        self.segments = segments
        keys, client = stage.keys, profiles.client
        self.keys = keys
        self.segment_reader = SegmentReader(client, keys)
        self.reader = reader
        # What the guards decided since start, by outcome (sent, held, cooldown, capped…).
        self.outcomes: Counter[str] = Counter()
        self.settings = settings
        triggers = settings.triggers
        self.replication = Replication(client, keys, settings.redis)
        self.offsets = OffsetStore(client, keys, self.replication)
        self.time = PartitionTiming(
            timers_library(client),
            keys,
            Allowances(
                disorder_ms=int(triggers.timer_disorder_s * 1000),
                idle_ms=int(triggers.timer_idle_s * 1000),
                write_delay_ms=int(triggers.timer_write_delay_s * 1000),
                away_ms=int(triggers.broker_away_s * 1000),
                floor_ms=int(triggers.timer_allowance_floor_s * 1000),
                window_ms=int(triggers.timer_allowance_window_s * 1000),
            ),
            worker=f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}",
            limit=triggers.relay_batch,
            fence=self.offsets.fence,
            settle=self.replication.settle,
        )
        self._allowances_shown: dict[int, int] = {}  # partition → last set on the gauge
        self.writer = TriggerWriter(
            client, triggers, self.time, widest_goal_ms=lambda: self.stage.goals.widest_ms
        )
        self.triggers = TriggerBatch(
            stage, reader=self.reader, timing=self.time, writer=self.writer, keys=keys,
            hash_key=settings.privacy_hash_key(),
        )  # fmt: skip
        self.decide_rules = DueDecider(stage, self.reader, self.writer)
        self.journeys = JourneyRunner(
            journeys if journeys is not None else JourneySet(()),
            JourneyStore(
                client, keys, fired_window_days=triggers.fired_window_days,
                log_size=triggers.decision_log,
                wall_ms=lambda: self.writer.wall_ms(),  # noqa: PLW0108 -- read late: a backtest sets it after
            ),
            self.reader, self._arm_waits, keys=keys, client=client, daily_cap=triggers.daily_cap,
            hash_key=settings.privacy_hash_key(), sent=self.writer.sent,
        )  # fmt: skip
        self.stage.use_journey_goals(self.journeys.journeys.goals)
        # What a partition's walk hands over, to the rules and the journeys.
        self.decide_due = DueWalk(self.decide_rules, self.journeys, self.reader)
        self.held = HeldTriggers(self.writer, keys, limit=triggers.relay_batch)
        self.schedules = Scheduler(
            stage, self.reader, self.writer, every_s=triggers.schedule_every_s
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> ProfilesAndTriggers:
        # A bad rule or segment set stops the worker before it starts.
        rules = load_rule_set(settings)
        segment_set = load_segment_set(settings)
        profiles = ProfileStage.from_settings(settings)
        keys = Keys(settings.redis.key_prefix)
        reader = ProfileReader(profiles.client, keys, profiles.shops)
        stage = TriggerStage(
            keys=keys,
            rules=rules,
            settings=settings.triggers,
            config_of=reader.config_of,
            hash_key=settings.privacy_hash_key(),
        )
        segments = SegmentStage(
            profiles.client,
            keys=keys,
            reader=reader,
            segments=segment_set,
            horizon_days=settings.segments.recheck_horizon_days,
        )
        metrics.RULES_LOADED.set(sum(1 for r in rules.rules if r.rule.enabled))
        journeys = load_journey_set(settings)
        return cls(profiles, stage, segments, settings, reader, journeys=journeys)

    async def handle(
        self, events: Sequence[Envelope], partitions: Sequence[int] | None = None
    ) -> BatchOutcome:
        """``partitions``: the partition each event was read from (all 0 if not given)."""
        segments = self.segments
        where = partitions if partitions is not None else [0] * len(events)
        relevant = self.stage.relevant(events, where)
        applied = await self.profiles.apply(events, segments.watched, self._read_request(relevant))
        known = applied.read_back
        # Segments and rules read the same applied profiles and write apart: side by side,
        # each one's Redis round trips overlap the other's Python work.
        changes, _ = await asyncio.gather(
            segments.on_batch(applied.touched, applied.changed, known),
            self._decide(events, where, known, relevant),
        )
        self.outcomes["segment_changes"] += changes
        if changes:
            metrics.SEGMENT_CHANGES.inc(changes)
        return applied

    def _read_request(self, relevant: Sequence[tuple[Envelope, int]]) -> ReadRequest:
        """What the segments and the rules will read of the batch's profiles: the profile
        call gives it back, so that neither reads again."""
        rule_sections, customers = self.triggers.read_request(relevant)
        sections = rule_sections | self.segments.sections
        return ReadRequest(key_kinds(sections), customers) if sections else ReadRequest()

    async def _decide(
        self,
        events: Sequence[Envelope],
        partitions: Sequence[int],
        known: ReadBack | None,
        relevant: Sequence[tuple[Envelope, int]],
    ) -> None:
        await self.catch_up()
        journeys = self.journeys.put_off(events, partitions)
        self.outcomes.update(
            await self.triggers.on_events(events, partitions, known, relevant, journeys)
        )

    async def _arm_waits(self, entries: Mapping[int, Sequence[PutOff]]) -> None:
        await self.writer.run(self.time.arm_calls(entries))

    async def catch_up(self) -> None:
        """Partitions that have caught up take the decisions they put off, in order."""
        self.outcomes.update(await self.time.catch_up(self.decide_due))

    async def fire_due(self) -> Counter[str]:
        """What is due by each partition's event time (the timers chore, every tick)."""
        await self.catch_up()
        await self.journeys.wake_the_replaced(self.time.partitions, self.time.read_up_to_ms)
        fired = await self.time.fire_due(self.decide_due)
        self.outcomes.update(fired)
        return fired

    def observe_event_time(
        self,
        newest: Mapping[TopicPartition, datetime],
        behind: Mapping[TopicPartition, int | None],
        *,
        written: Mapping[TopicPartition, int],
        heard: Mapping[TopicPartition, int],
        late: Mapping[TopicPartition, int] | None = None,
        appended: Collection[str] | None = None,
    ) -> None:
        timing = self.time
        timing.observe(
            {tp: epoch_ms(at) for tp, at in newest.items()}, behind,
            written=written, heard=heard, late=late or {}, appended=appended,
        )  # fmt: skip
        shown = self._allowances_shown
        for partition in timing.partitions:
            allowance = timing.allowance_ms(partition)
            if allowance is not None and shown.get(partition) != allowance:
                shown[partition] = allowance
                metrics.EVENT_TIME_ALLOWANCE.labels(str(partition)).set(allowance / 1000)

    async def partitions_assigned(
        self, partitions: Sequence[TopicPartition]
    ) -> dict[TopicPartition, int]:
        """This worker reads these partitions now: where their state says to resume."""
        self.time.assign({partition for _, partition in partitions})
        return await self.offsets.resume(partitions)

    async def partitions_revoked(self, partitions: Sequence[TopicPartition]) -> None:
        """These partitions go to another worker: no walk of theirs is left in flight."""
        self.offsets.forget(partitions)
        await self.time.revoke({partition for _, partition in partitions})

    async def check_offsets(self, partitions: Iterable[TopicPartition]) -> None:
        await self._rewinding(self.offsets.check(partitions))

    async def record_offsets(self, offsets: Mapping[TopicPartition, int]) -> None:
        await self._rewinding(self.offsets.record(offsets))

    async def _rewinding(self, step: Awaitable[None]) -> None:
        try:
            await step
        except StateBehindError as behind:
            # Read again from further back: a timer armed again must wait for what
            # cancels it to be read again too, not fire by the time read before.
            self.time.rewind({partition for _, partition in behind.positions})
            raise

    async def release_held(self) -> int:
        """Held triggers whose quiet hours are over go to the outbox; returns how many."""
        released = await self.held.release(int(_wall.time() * 1000))
        self.outcomes["released"] += released
        return released

    async def run_schedules(self) -> None:
        self.outcomes.update(await self.schedules.run(int(_wall.time() * 1000)))

    async def recheck_segments(self, every_s: float) -> tuple[int, int]:
        """The timed segments, evaluated again where a slot is due: (customers, changes)."""
        report = await self.segments.recheck_due(int(_wall.time() * 1000), every_s)
        if report.changes:
            self.outcomes["segment_changes"] += report.changes
            metrics.SEGMENT_CHANGES.inc(report.changes)
        return report.customers, report.changes

    @property
    def client(self) -> RedisClient:
        """The Redis client every stage shares (the relays use it too)."""
        return self.profiles.client

    async def backlog(self) -> Backlog:
        """What waits in Redis (outboxes, timers, held triggers, segment sizes)."""
        return await read_backlog(
            self.client,
            self.keys,
            int(_wall.time() * 1000),
            self.settings.topics.event_partitions,
        )

    async def segment_sizes_by_shop(self) -> Counter[tuple[str, str]]:
        return await read_sizes_by_shop(self.client, self.keys)

    def reload_rules(self) -> RuleSet | None:
        """Load the rules, segments and journeys again (handlers/rule_sets.py)."""
        return reload_sets(self.settings, self.stage, self.segments, self.journeys)

    async def close(self) -> None:
        try:
            await self.time.revoke(self.time.partitions)
        finally:
            await self.replication.close()
            await self.profiles.close()
