"""Event time, as far as the stream has got: when absence deadlines are due.

Each partition's newest event time is kept with the moment it was seen. The
stream's time is the slowest busy partition's, less a small allowance for
disorder between a customer's events; a partition quiet for ``idle_s`` stops
holding it back. When every partition is quiet, the clock drives instead. So a
backlog read hours behind the clock fires its timers by event time, in the order
things happened, and a live stream fires them on time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

PartitionKey = tuple[str, int]


class EventTimeClock:
    def __init__(
        self,
        disorder_ms: int,
        idle_s: float,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._disorder_ms = disorder_ms
        self._idle_s = idle_s
        self._wall = wall
        self._newest: dict[PartitionKey, tuple[int, float]] = {}

    def observe(self, newest_by_partition: Mapping[PartitionKey, int]) -> None:
        seen = self._wall()
        for partition, newest in newest_by_partition.items():
            previous = self._newest.get(partition)
            if previous is None or newest >= previous[0]:
                self._newest[partition] = (newest, seen)
            else:
                self._newest[partition] = (previous[0], seen)

    def now_ms(self) -> int:
        wall = self._wall()
        busy = [newest for newest, seen in self._newest.values() if wall - seen < self._idle_s]
        if not busy:
            return int(wall * 1000)
        return min(busy) - self._disorder_ms
