"""The worker's trigger chores: due timers, held triggers, schedules, segment rechecks, rule
reloads, the relays.

Each runs in every worker; the Redis functions make that safe (a partition's
timers are walked only by the worker that owns it, a held trigger moves to the
outbox once, the relay's consumer group gives each outbox entry to one worker).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import faust
from mode import Service
from redis.exceptions import RedisError

from crmstream import metrics
from crmstream.settings import Settings
from handlers.pipeline import ProfilesAndTriggers
from rules.folders import journeys_folder, rules_folder, segments_folder
from streams.relay import OutboxRelay
from streams.wakeups import nudged_or_after

log = logging.getLogger("crmstream.triggers")

_RULES_POLL_S = 2.0
# Cheap when nothing is due: each shard's pass is claimed once per slot (schedule_every_s).
_SCHEDULE_POLL_S = 10.0
_REPORT_EVERY_S = 10.0
_GAUGES_EVERY_S = 5.0
# Walks follow the polls that move a live partition's time, at most this often: a busy
# worker polls every few milliseconds, and each walk is a round trip.
_WAKE_SPACING_S = 0.05


def _rules_stamp(*folders: Path) -> tuple[tuple[str, float], ...]:
    try:
        return tuple(
            sorted((str(p), p.stat().st_mtime) for folder in folders for p in folder.glob("*.yaml"))
        )
    except OSError:
        return ()


class TriggerChores(Service):
    def __init__(self, settings: Settings, sink: ProfilesAndTriggers, **kwargs: Any) -> None:  # noqa: ANN401 -- mode's Service options
        super().__init__(**kwargs)
        self._sink = sink
        self._tick_s = settings.triggers.timer_tick_s
        self._watched = (
            rules_folder(settings.triggers),
            segments_folder(settings.segments),
            journeys_folder(settings.triggers),
        )
        # Taken now, just after the sink loaded them: a change made while the worker is
        # still starting is a change too.
        self._stamp = _rules_stamp(*self._watched)
        self._recheck_every_s = settings.segments.recheck_every_s
        self._metrics = settings.metrics.enabled
        self._per_shop = settings.metrics.per_shop
        self._reload_wanted = asyncio.Event()

    async def on_start(self) -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGHUP, self._reload_wanted.set)
        self.add_future(self._timers())
        self.add_future(self._schedules())
        self.add_future(self._watch_rules())
        self.add_future(self._segment_rechecks())
        if self._metrics:
            self.add_future(self._gauges())

    async def on_stop(self) -> None:
        asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)

    async def _every(
        self,
        what: str,
        interval_s: float,
        chore: Callable[[], Awaitable[None]],
        wake: asyncio.Event | None = None,
    ) -> None:
        """Run ``chore`` every ``interval_s`` until the worker stops, and sooner once ``wake``
        is set (no sooner than ``_WAKE_SPACING_S`` after the last run). Redis away is said
        and waited out; a bug is said with its traceback, and the chore runs again: it must
        not stop every timer, schedule or gauge with it."""
        while not self.should_stop:
            try:
                await chore()
            except (RedisError, OSError) as exc:
                log.warning("%s: Redis failed (%s); retrying", what, exc)
            except Exception:
                log.exception("%s: a pass failed; it runs again", what)
            if wake is None:
                await asyncio.sleep(interval_s)
                continue
            await asyncio.sleep(_WAKE_SPACING_S)
            await nudged_or_after(wake, interval_s - _WAKE_SPACING_S)

    async def _timers(self) -> None:
        sink = self._sink
        reported: dict[str, int] = {}
        next_report = time.monotonic() + _REPORT_EVERY_S

        next_release = 0.0  # monotonic

        async def tick() -> None:
            nonlocal reported, next_report, next_release
            try:
                await sink.fire_due()
                # Quiet hours end on the minute: a wake-up between ticks need not ask.
                if time.monotonic() >= next_release:
                    next_release = time.monotonic() + self._tick_s
                    await sink.release_held()
            finally:
                if time.monotonic() >= next_report:
                    now = dict(+sink.outcomes)
                    if now != reported:
                        log.info("trigger decisions so far: %s", now)
                        reported = now
                    next_report = time.monotonic() + _REPORT_EVERY_S

        # A poll that moves a partition's time may make something due: walked then, not at
        # the next tick.
        await self._every("timers", self._tick_s, tick, sink.time.moved)

    async def _schedules(self) -> None:
        await self._every("schedules", _SCHEDULE_POLL_S, self._sink.run_schedules)

    async def _segment_rechecks(self) -> None:
        """Time alone moves the timed segments: evaluated again once per slot, per shard."""

        async def recheck() -> None:
            customers, changes = await self._sink.recheck_segments(self._recheck_every_s)
            if customers:
                log.info("segments rechecked: %d customers, %d changes", customers, changes)

        await self._every(
            "segment recheck", min(_SCHEDULE_POLL_S, self._recheck_every_s / 4), recheck
        )

    async def _gauges(self) -> None:
        """What waits in Redis, as gauges: outboxes, timers, held triggers, segment sizes."""
        sink = self._sink

        async def read() -> None:
            backlog = await sink.backlog()
            by_shop = await sink.segment_sizes_by_shop() if self._per_shop else {}
            for outbox, entries in backlog.outbox.items():
                metrics.OUTBOX_BACKLOG.labels(outbox).set(entries)
                metrics.OUTBOX_OLDEST.labels(outbox).set(backlog.oldest_age_s[outbox])
            metrics.TIMERS_PENDING.set(backlog.timers)
            metrics.HELD.set(backlog.held)
            for segment, size in backlog.segments.items():
                metrics.SEGMENT_MEMBERS.labels(segment).set(size)
            for (shop, segment), size in by_shop.items():
                metrics.SEGMENT_MEMBERS_BY_SHOP.labels(shop, segment).set(size)

        await self._every("gauges", _GAUGES_EVERY_S, read)

    async def _watch_rules(self) -> None:
        stamp = self._stamp
        while not self.should_stop:
            with contextlib.suppress(TimeoutError):  # polling the folder is the fallback
                await asyncio.wait_for(self._reload_wanted.wait(), timeout=_RULES_POLL_S)
            changed = _rules_stamp(*self._watched)
            if self._reload_wanted.is_set() or changed != stamp:
                self._reload_wanted.clear()
                stamp = changed
                self._sink.reload_rules()


def register_triggers(app: faust.App, settings: Settings, sink: ProfilesAndTriggers) -> None:
    chores = TriggerChores(settings, sink, loop=app.loop, beacon=app.beacon)
    client = sink.client
    relays = [
        OutboxRelay.of(
            "triggers", settings, client, sink.writer.sent, loop=app.loop, beacon=app.beacon
        ),
        OutboxRelay.of(
            "segments", settings, client, sink.segments.changed, loop=app.loop, beacon=app.beacon
        ),
    ]

    async def start() -> None:
        await app.add_runtime_dependency(chores)
        for relay in relays:
            await app.add_runtime_dependency(relay)

    app.task(start)
