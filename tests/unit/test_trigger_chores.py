"""The worker's chores run on their interval, and a chore with a wake-up runs again as soon
as it is woken: the timers walk right after a poll moved a partition's time."""

from __future__ import annotations

import asyncio
from typing import Any

from crmstream.settings import Settings
from streams.trigger_tasks import TriggerChores
from tests.support import eventually_async

# Longer than the test may wait: a second run came because the chore was woken.
_INTERVAL_S = 600.0


def chores() -> TriggerChores:
    sink: Any = object()  # _every never touches the sink
    return TriggerChores(Settings(), sink, loop=asyncio.get_running_loop())


class Runs:
    """A chore that counts its runs, failing each time if asked to."""

    def __init__(self, *, failing: bool = False) -> None:
        self.count = 0
        self._failing = failing

    async def chore(self) -> None:
        self.count += 1
        if self._failing:
            raise ValueError("a bug in one pass")

    async def seen(self) -> int:
        return self.count


async def test_a_woken_chore_runs_again_before_its_interval() -> None:
    wake, runs = asyncio.Event(), Runs()
    task = asyncio.ensure_future(chores()._every("walk", _INTERVAL_S, runs.chore, wake))
    try:
        await eventually_async(runs.seen, 10, "the first run", every_s=0.01)
        wake.set()
        await eventually_async(
            runs.seen, 10, "a run once woken", until=lambda n: n >= 2, every_s=0.01
        )
        assert not wake.is_set()  # taken: the next run waits for the next wake-up
        wake.set()
        await eventually_async(
            runs.seen, 10, "a run woken again", until=lambda n: n >= 3, every_s=0.01
        )
    finally:
        task.cancel()


async def test_a_chore_that_fails_runs_again() -> None:
    wake, runs = asyncio.Event(), Runs(failing=True)
    task = asyncio.ensure_future(chores()._every("walk", _INTERVAL_S, runs.chore, wake))
    try:
        await eventually_async(runs.seen, 10, "the first run", every_s=0.01)
        wake.set()
        await eventually_async(runs.seen, 10, "a second run", until=lambda n: n >= 2, every_s=0.01)
    finally:
        task.cancel()
