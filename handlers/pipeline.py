"""The worker's default sink: profiles first, then the rules that read them.

Both stages are idempotent, so a batch handed over again after a crash changes
nothing twice: the profile stage skips what it has seen, and a trigger it
already emitted keeps its id and is refused as a duplicate.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime

from crmstream.settings import Settings
from handlers.keys import Keys
from handlers.profile.encode import epoch_ms
from handlers.profile.read import ProfileReader
from handlers.profile.stage import ProfileStage
from handlers.triggers.progress import EventTimeClock
from handlers.triggers.samples import rule_samples
from handlers.triggers.schedules import Scheduler
from handlers.triggers.stage import TriggerStage
from handlers.triggers.timers import TimerPump
from rules.loader import RuleSet, RuleSetError, load_rules
from schemas.events import Envelope

log = logging.getLogger("crmstream.pipeline")


def load_rule_set(settings: Settings) -> RuleSet:
    """The configured rules, checked; raises RuleSetError naming every problem."""
    return load_rules(settings.triggers.rules_dir, rule_samples)


class ProfilesAndTriggers:
    """An EventSink: the profile stage, then the trigger stage, on the same Redis client."""

    def __init__(self, profiles: ProfileStage, triggers: TriggerStage, settings: Settings) -> None:
        self.profiles = profiles
        self.triggers = triggers
        # What the guards decided since start, by outcome (sent, held, cooldown, capped…).
        self.outcomes: Counter[str] = Counter()
        self._settings = settings
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
        rules = load_rule_set(settings)  # a bad rule set stops the worker before it starts
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
        return cls(profiles, triggers, settings)

    async def handle(self, events: Sequence[Envelope]) -> None:
        await self.profiles.apply(events)
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
        """Load the rules again; on a problem keep the current ones and say why."""
        try:
            rules = load_rule_set(self._settings)
        except RuleSetError as exc:
            # The problems are the message: a traceback would bury them.
            kept = len(self.triggers.rules.rules)
            log.error("rules not reloaded; the %d loaded stay:\n%s", kept, exc)  # noqa: TRY400
            return None
        self.triggers.rules = rules
        log.info("rules reloaded: %d enabled", sum(1 for r in rules.rules if r.rule.enabled))
        return rules

    async def close(self) -> None:
        try:
            await self.timers.leave()
        finally:
            await self.profiles.close()
