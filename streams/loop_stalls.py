"""How long this worker's event loop was lately kept from running: how late a time taken
on the loop may be.

aiokafka stamps a partition's fetch response with the clock when the response is processed
on the loop (``last_poll_timestamp``), not when the broker answered. A response that came
while the loop ran a batch's Python waits for it, so its stamp can be later than the
broker's answer by as long as that ran; and the consumer's word that a partition was caught
up as of that stamp would claim records the broker appended meanwhile as read. So that word
is moved back by the longest stall of the last moments: a tick on the loop every few
milliseconds notes how late it ran, and a sliding maximum keeps the worst, as the write
lateness is kept (handlers/timing/allowance.py).
"""

from __future__ import annotations

import asyncio
import time

from handlers.timing.allowance import SlidingMax

_EVERY_S = 0.005


class LoopStalls:
    """The longest stall of the event loop within a window, in milliseconds."""

    def __init__(self, window_ms: int) -> None:
        self._most = SlidingMax(window_ms)
        self._handle: asyncio.TimerHandle | None = None
        self._due = 0.0

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._due = loop.time() + _EVERY_S
        self._handle = loop.call_at(self._due, self._tick, loop)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _tick(self, loop: asyncio.AbstractEventLoop) -> None:
        now = loop.time()
        # A stall that began just after a tick delays the next one by all but the interval.
        self._most.add(int((now - self._due + _EVERY_S) * 1000), int(time.time() * 1000))
        self._due = now + _EVERY_S
        self._handle = loop.call_at(self._due, self._tick, loop)

    def most_ms(self) -> int:
        return self._most.most(int(time.time() * 1000))
