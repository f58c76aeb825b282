"""The event loop's stalls (streams/loop_stalls.py): a fetch answer stamped on the loop is
only as good as the longest stall before it, so the consumer moves its word back by that."""

from __future__ import annotations

import asyncio
import os
import random
import time

from handlers.timing.allowance import SlidingMax
from streams.loop_stalls import LoopStalls
from tests.support import eventually_async


def test_the_sliding_max_is_the_largest_value_still_in_the_window() -> None:
    seed = int(os.environ.get("STALLS_SEED", "1234"))
    print(f"seed={seed}")  # noqa: T201 -- replayed from it
    rng = random.Random(seed)
    most, added = SlidingMax(window_ms=1_000), []
    for now_ms in sorted(rng.sample(range(10_000), 400)):
        value = rng.randrange(500)
        most.add(value, now_ms)
        added.append((now_ms, value))
        within = [v for at, v in added if at >= now_ms - 1_000]
        assert most.most(now_ms) == max(within)
    assert most.most(20_000) == 0  # the window holds nothing any more


async def test_a_stall_of_the_loop_is_measured_and_kept_for_the_window() -> None:
    stalls = LoopStalls(window_ms=60_000)
    stalls.start(asyncio.get_running_loop())
    try:
        await asyncio.sleep(0.05)
        quiet = stalls.most_ms()
        time.sleep(0.2)  # noqa: ASYNC251 -- the stall measured: a batch's Python holding the loop

        async def most() -> int:
            return stalls.most_ms()

        await eventually_async(
            most, 10, "the stall measured", until=lambda ms: ms >= 200, every_s=0.01
        )
        assert quiet < 200
    finally:
        stalls.stop()
