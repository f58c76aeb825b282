"""Event time, as far as the stream has got: when absence deadlines are due.

Deadlines are event time, so that a file replayed at speed, a backlog after
downtime and live traffic all fire the same timers:

- while the worker is behind on some partition, time is the newest event time
  of the slowest such partition: a deadline falls due only once everything
  before it has been read, so the order that cancels an abandoned-cart timer is
  never overtaken by it, whatever topic it travels on. A partition only a few
  records behind whose last event is fresh is live traffic, not a backlog: it
  does not hold time back (a quiet topic's stale last event would, for nothing);
- caught up on live traffic (its newest events are fresh), time is the clock's;
- caught up on old events (a replay), time is the newest event time read, until
  no event has come for ``idle_s``: then the clock moves time on.

Less, in every case, a small allowance for events arriving a little out of order.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Final

PartitionKey = tuple[str, int]
_LIVE_LAG: Final = 200  # records
_LIVE_WINDOW_MS: Final = 10_000


class EventTimeClock:
    def __init__(
        self, disorder_ms: int, idle_s: float, wall: Callable[[], float] = time.time
    ) -> None:
        self._disorder_ms = disorder_ms
        self._idle_s = idle_s
        self._wall = wall
        self._newest: dict[PartitionKey, int] = {}
        # Until the consumer has said where it stands, assume it is behind on everything: a
        # worker starting on a backlog must not decide before it has read what came first.
        self._behind: frozenset[PartitionKey] = frozenset({("", -1)})
        self._last_event_at = 0.0

    def observe(
        self,
        newest_by_partition: Mapping[PartitionKey, int],
        behind: Mapping[PartitionKey, int | None],
    ) -> None:
        """A batch was read: its newest event per partition, and the partitions that still
        lag, with how many records (None: unknown)."""
        for partition, newest in newest_by_partition.items():
            if newest > self._newest.get(partition, 0):
                self._newest[partition] = newest
        wall_ms = int(self._wall() * 1000)
        self._behind = frozenset(
            partition
            for partition, lag in behind.items()
            if not self._live(partition, lag, wall_ms)
        )
        if newest_by_partition:
            self._last_event_at = wall_ms / 1000

    def _live(self, partition: PartitionKey, lag: int | None, wall_ms: int) -> bool:
        newest = self._newest.get(partition)
        return (
            lag is not None
            and newest is not None
            and lag <= _LIVE_LAG
            and newest >= wall_ms - _LIVE_WINDOW_MS
        )

    @property
    def behind(self) -> bool:
        return bool(self._behind)

    def now_ms(self) -> int:
        """Event time deadlines are due by."""
        if self._behind:
            # A lagging partition not read from yet holds time at its start: nothing is due.
            return min(self._newest.get(p, 0) for p in self._behind) - self._disorder_ms
        return self._stream_ms() - self._disorder_ms

    def read_up_to_ms(self) -> int:
        """Event time up to which every event has been read: all of it once caught up."""
        return self.now_ms() if self._behind else self._stream_ms()

    def _stream_ms(self) -> int:
        stream = max(self._newest.values(), default=0)
        wall = self._wall()
        wall_ms = int(wall * 1000)
        # Caught up on live traffic, the clock is event time: a pause between two events
        # does not hold a deadline back. Replaying the past, only a quiet stream lets it.
        live = wall_ms - stream <= _LIVE_WINDOW_MS
        if live or wall - self._last_event_at >= self._idle_s:
            stream = max(stream, wall_ms)
        return stream
