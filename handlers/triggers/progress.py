"""Event time, as far as the stream has got: when absence deadlines are due.

While the worker is behind on some partition (a backlog, a replay, a restart
after downtime), time is the newest event time of the slowest such partition:
a deadline falls due only once every event before it has been read, so an
order that cancels an abandoned-cart timer is never overtaken by it. Once the
worker has caught up everywhere, events are live and the clock drives. Either
way, less a small allowance for events that arrive a little out of order.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping

PartitionKey = tuple[str, int]


class EventTimeClock:
    def __init__(self, disorder_ms: int, wall: Callable[[], float] = time.time) -> None:
        self._disorder_ms = disorder_ms
        self._wall = wall
        self._newest: dict[PartitionKey, int] = {}
        self._behind: frozenset[PartitionKey] = frozenset()

    def observe(
        self, newest_by_partition: Mapping[PartitionKey, int], behind: Collection[PartitionKey]
    ) -> None:
        """A batch was read: its newest event per partition, and which partitions still lag."""
        for partition, newest in newest_by_partition.items():
            if newest > self._newest.get(partition, 0):
                self._newest[partition] = newest
        self._behind = frozenset(behind)

    def now_ms(self) -> int:
        if self._behind:
            # A lagging partition not read from yet holds time at its start: nothing is due.
            slowest = min(self._newest.get(partition, 0) for partition in self._behind)
        else:
            slowest = int(self._wall() * 1000)
        return slowest - self._disorder_ms
