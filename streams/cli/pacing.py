"""Keeping a steady rate of work."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final

# How far ahead of its rate a sender runs before it sleeps. A sleep per event costs a
# sender at thousands of events a second more CPU than the events themselves (a syscall
# and a wake-up each); events sent a millisecond or two early change nothing downstream.
SLICE_S: Final = 0.002


class Pacer:
    """Sleeps just enough to keep a steady rate; does nothing without one."""

    def __init__(
        self,
        rate: float | None,
        slice_s: float = SLICE_S,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rate = rate
        self.slice_s = slice_s
        self._clock = clock
        self._sleep = sleep
        self.started = clock()

    def wait(self, done: int) -> None:
        """After the ``done``-th event: sleep if the sender is a slice or more ahead."""
        if self.rate is None:
            return
        ahead = done / self.rate - (self._clock() - self.started)
        if ahead > self.slice_s:
            self._sleep(ahead)
