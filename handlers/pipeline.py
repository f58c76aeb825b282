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
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime

from crmstream import metrics
from crmstream.settings import Settings
from handlers.keys import Keys
from handlers.profile.encode import epoch_ms
from handlers.profile.read import ProfileReader
from handlers.profile.stage import BatchOutcome, ProfileStage
from handlers.segments.read import SegmentReader
from handlers.segments.stage import SegmentStage
from handlers.triggers.progress import EventTimeClock
from handlers.triggers.samples import rule_samples
from handlers.triggers.schedules import Scheduler
from handlers.triggers.stage import TriggerStage
from handlers.triggers.timers import TimerPump
from rules.loader import RuleSet, RuleSetError, load_rules
from rules.segment_set import SegmentSet, load_segments
from schemas.events import Envelope

log = logging.getLogger("crmstream.pipeline")


def load_rule_set(settings: Settings) -> RuleSet:
    """The configured rules, checked; raises RuleSetError naming every problem."""
    return load_rules(settings.triggers.rules_dir, rule_samples)


def load_segment_set(settings: Settings) -> SegmentSet:
    """The configured segments, checked; raises RuleSetError naming every problem."""
    return load_segments(settings.segments.segments_dir, rule_samples(None))


class ProfilesAndTriggers:
    """An EventSink: the profile stage, then the segment and trigger stages, on the same
    Redis client."""

    def __init__(
        self,
        profiles: ProfileStage,
        triggers: TriggerStage,
        segments: SegmentStage,
        settings: Settings,
    ) -> None:
        self.profiles = profiles
        self.triggers = triggers
        self.segments = segments
        self.segment_reader = SegmentReader(profiles.client, triggers.keys)
        # What the guards decided since start, by outcome (sent, held, cooldown, capped…).
        self.outcomes: Counter[str] = Counter()
        self.settings = settings
        trigger_settings = settings.triggers
        self.schedules = Scheduler(triggers, every_s=trigger_settings.schedule_every_s)
        self.timers = TimerPump(
            triggers,
            limit=trigger_settings.relay_batch,
            worker=f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}",
            # A worker silent this long has left the group: its clock no longer holds time.
            stale_ms=int(settings.worker.session_timeout_s * 2000),
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> ProfilesAndTriggers:
        # A bad rule or segment set stops the worker before it starts.
        rules = load_rule_set(settings)
        segment_set = load_segment_set(settings)
        profiles = ProfileStage.from_settings(settings)
        keys = Keys(settings.redis.key_prefix)
        reader = ProfileReader(profiles.client, keys, profiles.shops)
        clock = EventTimeClock(
            disorder_ms=int(settings.triggers.timer_disorder_s * 1000),
            idle_s=settings.triggers.timer_idle_s,
        )
        triggers = TriggerStage(
            profiles.client,
            keys=keys,
            reader=reader,
            rules=rules,
            settings=settings.triggers,
            clock=clock,
        )
        segments = SegmentStage(
            profiles.client,
            keys=keys,
            reader=reader,
            segments=segment_set,
            horizon_days=settings.segments.recheck_horizon_days,
        )
        metrics.RULES_LOADED.set(sum(1 for r in rules.rules if r.rule.enabled))
        return cls(profiles, triggers, segments, settings)

    async def handle(self, events: Sequence[Envelope]) -> BatchOutcome:
        applied = await self.profiles.apply(events)
        # Segments and rules read the same applied profiles and write apart: side by side,
        # each one's Redis round trips overlap the other's Python work.
        changes, _ = await asyncio.gather(
            self.segments.on_batch(applied.touched), self._decide(events)
        )
        self.outcomes["segment_changes"] += changes
        if changes:
            metrics.SEGMENT_CHANGES.inc(changes)
        return applied

    async def _decide(self, events: Sequence[Envelope]) -> None:
        if self.triggers.deferring and not self.triggers.clock.behind:
            self.outcomes.update(await self.timers.catch_up())
        self.outcomes.update(await self.triggers.on_events(events))

    def observe_event_time(
        self,
        newest: Mapping[tuple[str, int], datetime],
        behind: Mapping[tuple[str, int], int | None],
    ) -> None:
        self.triggers.clock.observe({tp: epoch_ms(at) for tp, at in newest.items()}, behind)

    def reload_rules(self) -> RuleSet | None:
        """Load the rules and segments again; on a problem keep the current ones and say why."""
        try:
            rules = load_rule_set(self.settings)
            segments = load_segment_set(self.settings)
        except RuleSetError as exc:
            # The problems are the message: a traceback would bury them.
            kept = len(self.triggers.rules.rules)
            log.error(  # noqa: TRY400
                "rules and segments not reloaded; the %d rules and %d segments loaded stay:\n%s",
                kept,
                len(self.segments.segments.segments),
                exc,
            )
            metrics.RULE_RELOADS.labels("failed").inc()
            return None
        self.triggers.rules = rules
        self.segments.segments = segments
        metrics.RULE_RELOADS.labels("ok").inc()
        metrics.RULES_LOADED.set(sum(1 for r in rules.rules if r.rule.enabled))
        log.info(
            "rules reloaded: %d enabled; %d segments",
            sum(1 for r in rules.rules if r.rule.enabled),
            len(segments.segments),
        )
        return rules

    async def close(self) -> None:
        try:
            await self.timers.leave()
        finally:
            await self.profiles.close()
