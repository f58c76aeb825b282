"""Keeping a steady rate of work."""

from __future__ import annotations

import time


class Pacer:
    """Sleeps just enough to keep a steady rate; does nothing without one."""

    def __init__(self, rate: float | None) -> None:
        self.rate = rate
        self.started = time.monotonic()

    def wait(self, done: int) -> None:
        if self.rate is None:
            return
        ahead = done / self.rate - (time.monotonic() - self.started)
        if ahead > 0:
            time.sleep(ahead)
