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


async def test_a_woken_chore_runs_again_before_its_interval() -> None:
    service = chores()
    wake = asyncio.Event()
    runs = 0

    async def chore() -> None:
        nonlocal runs
        runs += 1

    async def count() -> int:
        return runs

    task = asyncio.ensure_future(service._every("walk", _INTERVAL_S, chore, wake))
    try:
        await eventually_async(count, 10, "the first run", every_s=0.01)
        wake.set()
        await eventually_async(count, 10, "a run once woken", until=lambda n: n >= 2, every_s=0.01)
        assert not wake.is_set()  # taken: the next run waits for the next wake-up
        wake.set()
        await eventually_async(count, 10, "a run woken again", until=lambda n: n >= 3, every_s=0.01)
    finally:
        task.cancel()


async def test_a_chore_that_fails_runs_again() -> None:
    service = chores()
    wake = asyncio.Event()
    runs = 0

    async def failing() -> None:
        nonlocal runs
        runs += 1
        raise ValueError("a bug in one pass")

    async def count() -> int:
        return runs

    task = asyncio.ensure_future(service._every("walk", _INTERVAL_S, failing, wake))
    try:
        await eventually_async(count, 10, "the first run", every_s=0.01)
        wake.set()
        await eventually_async(count, 10, "a second run", until=lambda n: n >= 2, every_s=0.01)
    finally:
        task.cancel()
