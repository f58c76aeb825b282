"""Event time per partition: when absence deadlines and put-off decisions fall due.

A customer's events all travel in partition *p* of every event topic, and the
consumer gives partition *p* of every topic to one worker. So what is due for
that customer depends only on how far partition *p* has been read: its event
time is kept per partition, like a Kafka Streams task's stream time, and workers
never agree on a clock between them. A worker that is idle, holds no partitions
or only empty ones holds nobody back.

For one partition *p*, across the event topics:

- while some topic's partition *p* is behind, time is the newest event time read
  there (the slowest such topic's): a deadline falls due only once everything
  before it has been read, so the order that cancels an abandoned-cart timer is
  never overtaken by it, whatever topic it travels on. A topic only a few records
  behind whose last event is fresh is live traffic, not a backlog: it does not
  hold time back (a quiet topic's stale last event would, for nothing);
- caught up on live traffic (its newest events are fresh), time is the clock's;
- caught up on old events (a replay), time is the newest event time read, until
  no event has come for ``idle_s``: then the clock moves time on.

Less, in every case, a small allowance for events arriving a little out of order.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import Final

TopicPartition = tuple[str, int]
_LIVE_LAG: Final = 200  # records
_LIVE_WINDOW_MS: Final = 10_000
_NOT_READ_YET: Final = "\x00"  # stands for every topic until the consumer has said more


class PartitionClock:
    """How far one partition has been read, over every event topic."""

    def __init__(self, disorder_ms: int, idle_s: float, wall: Callable[[], float]) -> None:
        self._disorder_ms = disorder_ms
        self._idle_s = idle_s
        self._wall = wall
        self._newest: dict[str, int] = {}  # topic → newest event time read (ms)
        # Until the consumer has said where this partition stands, it is behind on every
        # topic: a worker given a backlog must not decide before it has read what came first.
        self._behind: frozenset[str] = frozenset({_NOT_READ_YET})
        self._last_event_at = wall()

    def observe(self, newest: Mapping[str, int], behind: Mapping[str, int | None]) -> None:
        """A poll: the newest event read per topic, and the topics still behind, with how
        many records (None: not fetched from yet)."""
        for topic, at in newest.items():
            if at > self._newest.get(topic, 0):
                self._newest[topic] = at
        wall_ms = int(self._wall() * 1000)
        self._behind = frozenset(
            topic for topic, lag in behind.items() if not self._live(topic, lag, wall_ms)
        )
        if newest:
            self._last_event_at = wall_ms / 1000

    def _live(self, topic: str, lag: int | None, wall_ms: int) -> bool:
        newest = self._newest.get(topic)
        return (
            lag is not None
            and newest is not None
            and lag <= _LIVE_LAG
            and newest >= wall_ms - _LIVE_WINDOW_MS
        )

    @property
    def behind(self) -> bool:
        return bool(self._behind)

    def due_ms(self) -> int:
        """Event time deadlines are due by."""
        if self._behind:
            # A topic not read from yet holds time at its start: nothing is due.
            return min(self._newest.get(topic, 0) for topic in self._behind) - self._disorder_ms
        return self._stream_ms() - self._disorder_ms

    def read_up_to_ms(self) -> int:
        """Event time up to which every event has been read: all of it once caught up."""
        return self.due_ms() if self._behind else self._stream_ms()

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


class StreamTime:
    """This worker's partitions and their clocks, and which of them defer decisions.

    The consumer says which partitions the worker owns (``assign``/``revoke``); a
    partition observed without being assigned (a backtest, a test driving the sink
    by hand) is owned from then on.
    """

    def __init__(
        self, disorder_ms: int, idle_s: float, wall: Callable[[], float] = time.time
    ) -> None:
        self._disorder_ms = disorder_ms
        self._idle_s = idle_s
        self._wall = wall
        self._clocks: dict[int, PartitionClock] = {}
        # Partitions whose decisions wait in event-time order: behind, or with decisions
        # put off while they were and not yet taken.
        self._deferring: set[int] = set()

    def assign(self, partitions: Iterable[int]) -> None:
        for partition in partitions:
            self._clock(partition)

    def revoke(self, partitions: Iterable[int]) -> None:
        for partition in partitions:
            self._clocks.pop(partition, None)
            self._deferring.discard(partition)

    @property
    def partitions(self) -> list[int]:
        return sorted(self._clocks)

    def owns(self, partition: int) -> bool:
        return partition in self._clocks

    def observe(
        self,
        newest: Mapping[TopicPartition, int],
        behind: Mapping[TopicPartition, int | None],
        *,
        polled: Iterable[int] = (),
    ) -> None:
        """A poll of the consumer: the newest event time read per topic partition, and the
        ones still behind. Every partition named here, or ``polled``, is brought up to date;
        a partition polled and named in neither is caught up on every topic."""
        by_partition: dict[int, tuple[dict[str, int], dict[str, int | None]]] = {
            partition: ({}, {}) for partition in polled
        }
        for (topic, partition), at in newest.items():
            by_partition.setdefault(partition, ({}, {}))[0][topic] = at
        for (topic, partition), lag in behind.items():
            by_partition.setdefault(partition, ({}, {}))[1][topic] = lag
        for partition, (read, lagging) in by_partition.items():
            self._clock(partition).observe(read, lagging)

    def behind(self, partition: int) -> bool:
        return self._clock(partition).behind

    def due_ms(self, partition: int) -> int:
        return self._clock(partition).due_ms()

    def read_up_to_ms(self, partition: int) -> int:
        return self._clock(partition).read_up_to_ms()

    def deferring(self, partition: int) -> bool:
        """Decisions about this partition's events wait for its event time (and stay in
        event-time order with what waits already)."""
        if self._clock(partition).behind:
            self._deferring.add(partition)
        return partition in self._deferring

    def settled(self, partition: int) -> None:
        """Nothing put off waits for this partition any more: decide at once again."""
        clock = self._clocks.get(partition)
        if clock is not None and not clock.behind:
            self._deferring.discard(partition)

    def catching_up(self) -> list[int]:
        """Partitions caught up whose put-off decisions are still to be taken."""
        return [p for p in sorted(self._deferring) if p in self._clocks and not self.behind(p)]

    def _clock(self, partition: int) -> PartitionClock:
        clock = self._clocks.get(partition)
        if clock is None:
            clock = self._clocks[partition] = PartitionClock(
                self._disorder_ms, self._idle_s, self._wall
            )
        return clock
