"""How late storefronts' writes really reach the broker, measured from the stream.

An event topic set to ``message.timestamp.type=LogAppendTime`` (``crmstream topics
create`` sets it) stamps each record with the broker's append time. Beside the event's
own ``time``, that says how long the event took from the storefront to the broker: its
lateness. A partition's time must stay that far behind what has been read, or an event
still on its way could land before a decision already taken (clock.py).

So the allowance is the largest lateness seen in a sliding window, between a floor (the
network and the clocks between broker and worker) and a ceiling. It is the largest, not a
quantile: every event later than the allowance is one that may be decided against, and
a producer that starts lagging must raise it with its first late record, not after a
hundred. It falls again once the window holds no late record. An event later than the
ceiling, or one replayed from the past, is a late event: it does not stretch the
allowance past the ceiling, and it is handled as late events always are.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Allowances:
    """How a partition's clock reads its topics (clock.py), in milliseconds."""

    disorder_ms: int
    idle_ms: int
    write_delay_ms: int
    away_ms: int
    # On topics the broker stamps with append times: the least and the most the allowance
    # for writes still on their way may be, and how long a late write keeps it up
    # (WriteLateness below). The most is write_delay_ms.
    floor_ms: int = 50
    window_ms: int = 10_000


class SlidingMax:
    """The largest of the values added within the last ``window_ms``."""

    def __init__(self, window_ms: int) -> None:
        self._window_ms = window_ms
        # (when added, value), values strictly falling: the front is the window's most.
        self._samples: deque[tuple[int, int]] = deque()

    def add(self, value: int, now_ms: int) -> None:
        samples = self._samples
        while samples and samples[-1][1] <= value:
            samples.pop()
        samples.append((now_ms, value))

    def most(self, now_ms: int) -> int:
        """The window's largest value; 0 once the window holds none."""
        samples = self._samples
        while samples and samples[0][0] < now_ms - self._window_ms:
            samples.popleft()
        return samples[0][1] if samples else 0


class WriteLateness:
    """A sliding maximum of (append time - event time), clamped to [floor, ceiling]."""

    def __init__(self, floor_ms: int, ceiling_ms: int, window_ms: int) -> None:
        self.floor_ms = floor_ms
        self.ceiling_ms = ceiling_ms
        self._most = SlidingMax(window_ms)

    def add(self, lateness_ms: int, now_ms: int) -> None:
        """One poll's largest lateness (of records stamped with their append time)."""
        if lateness_ms > self.ceiling_ms:
            return  # a late or replayed event, not a measure of how writes travel
        self._most.add(lateness_ms, now_ms)

    def allowance_ms(self, now_ms: int) -> int:
        return min(self.ceiling_ms, max(self.floor_ms, self._most.most(now_ms)))
