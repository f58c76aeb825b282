"""The worker's trigger chores: due timers, held triggers, schedules, rule reloads, the relay.

Each runs in every worker; the Redis functions make that safe (a timer is
leased to one worker, a held trigger moves to the outbox once, the relay's
consumer group gives each outbox entry to one worker).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from pathlib import Path
from typing import Any

import faust
from mode import Service
from redis.exceptions import RedisError

from crmstream.settings import Settings
from handlers.pipeline import ProfilesAndTriggers
from streams.relay import OutboxRelay

log = logging.getLogger("crmstream.triggers")

_RULES_POLL_S = 2.0
# Cheap when nothing is due: each shard's pass is claimed once per slot (schedule_every_s).
_SCHEDULE_POLL_S = 10.0
_REPORT_EVERY_S = 10.0


def _rules_stamp(folder: Path) -> tuple[tuple[str, float], ...]:
    try:
        return tuple(sorted((p.name, p.stat().st_mtime) for p in folder.glob("*.yaml")))
    except OSError:
        return ()


class TriggerChores(Service):
    def __init__(self, settings: Settings, sink: ProfilesAndTriggers, **kwargs: Any) -> None:  # noqa: ANN401 -- mode's Service options
        super().__init__(**kwargs)
        self._sink = sink
        self._tick_s = settings.triggers.timer_tick_s
        self._rules_dir = settings.triggers.rules_dir
        self._reload_wanted = asyncio.Event()

    async def on_start(self) -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGHUP, self._reload_wanted.set)
        self.add_future(self._timers())
        self.add_future(self._schedules())
        self.add_future(self._watch_rules())

    async def on_stop(self) -> None:
        asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)

    async def _timers(self) -> None:
        pump = self._sink.timers
        reported: dict[str, int] = {}
        next_report = time.monotonic() + _REPORT_EVERY_S
        while not self.should_stop:
            try:
                self._sink.outcomes.update(await pump.fire_due())
                self._sink.outcomes["released"] += await pump.release_held(int(time.time() * 1000))
            except (RedisError, OSError) as exc:
                log.warning("timers: Redis failed (%s); retrying", exc)
            except Exception:  # a bug must not stop every timer: said, and walked again
                log.exception("timers: a walk failed; what it took is walked again")
            if time.monotonic() >= next_report:
                now = dict(+self._sink.outcomes)
                if now != reported:
                    log.info("trigger decisions so far: %s", now)
                    reported = now
                next_report = time.monotonic() + _REPORT_EVERY_S
            await asyncio.sleep(self._tick_s)

    async def _schedules(self) -> None:
        while not self.should_stop:
            try:
                self._sink.outcomes.update(await self._sink.schedules.run(int(time.time() * 1000)))
            except (RedisError, OSError) as exc:
                log.warning("schedules: Redis failed (%s); retrying", exc)
            except Exception:  # a bug must not stop every schedule: said, and tried again
                log.exception("schedules: a pass failed")
            await asyncio.sleep(_SCHEDULE_POLL_S)

    async def _watch_rules(self) -> None:
        stamp = _rules_stamp(self._rules_dir)
        while not self.should_stop:
            with contextlib.suppress(TimeoutError):  # polling the folder is the fallback
                await asyncio.wait_for(self._reload_wanted.wait(), timeout=_RULES_POLL_S)
            changed = _rules_stamp(self._rules_dir)
            if self._reload_wanted.is_set() or changed != stamp:
                self._reload_wanted.clear()
                stamp = changed
                self._sink.reload_rules()


def register_triggers(app: faust.App, settings: Settings, sink: ProfilesAndTriggers) -> None:
    chores = TriggerChores(settings, sink, loop=app.loop, beacon=app.beacon)
    relay = OutboxRelay(settings, sink.profiles.client, loop=app.loop, beacon=app.beacon)

    async def start() -> None:
        await app.add_runtime_dependency(chores)
        await app.add_runtime_dependency(relay)

    app.task(start)
