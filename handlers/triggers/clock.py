"""Event time per partition: when absence deadlines and put-off decisions fall due.

A customer's events all travel in partition *p* of every event topic, and the
consumer gives partition *p* of every topic to one worker. So what is due for
that customer depends only on how far partition *p* has been read: its event
time is kept per partition, like a Kafka Streams task's stream time, and workers
never agree on a clock between them. A worker that is idle, holds no partitions
or only empty ones holds nobody back.

For one partition *p*, each event topic holds its time back at the newest event
read there for as long as it may still bring an older event than the others have
(the low watermark over a source's splits, as in Flink):

- a topic still behind holds time: a deadline falls due only once everything
  before it has been read, so the order that cancels an abandoned-cart timer is
  never overtaken by it, whatever topic it travels on;
- a topic caught up holds time too until polls have found nothing new there for
  a moment: a producer's burst reaches the five topics one by one, and one
  topic's share of it can be read before another's has arrived;
- caught up on live traffic (the newest events are fresh), time is the clock's;
- caught up on old events (a replay), time is the newest event read until polls
  have found every topic quiet for ``idle_s``: then the clock moves time on.
  Quiet is what polls confirm, not time passing, and the consumer reports a
  topic it has not heard of from the broker lately as behind: a broker away or a
  worker stalled on Redis is never taken for a producer that has finished.

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
# A producer's burst reaches the topics one by one: a topic caught up holds time at its
# newest event until polls have found nothing new there for this long.
_SETTLE_S: Final = 0.5


class PartitionClock:
    """How far one partition has been read, over every event topic."""

    def __init__(self, disorder_ms: int, idle_s: float, wall: Callable[[], float]) -> None:
        self._disorder_ms = disorder_ms
        self._idle_s = idle_s
        self._wall = wall
        self._newest: dict[str, int] = {}  # topic → newest event time read (ms)
        self._topics: set[str] = set()  # every topic the consumer has named, read or not
        # Until the consumer has said where this partition stands, it is behind on every
        # topic: a worker given a backlog must not decide before it has read what came first.
        self._behind: frozenset[str] = frozenset({_NOT_READ_YET})
        # topic → (since, last confirmed): the polls, by the wall clock, that found it
        # caught up with nothing new. A topic not named here has just brought records, or
        # is behind. Quiet is what polls confirm, not time passing: a worker stalled on
        # Redis, or a broker away, confirms nothing.
        self._quiet: dict[str, tuple[float, float]] = {}

    def observe(self, newest: Mapping[str, int], behind: Mapping[str, int | None]) -> None:
        """A poll: the newest event read per topic, and the topics still behind, with how
        many records (None: not heard of from the broker lately, so unknown)."""
        wall = self._wall()
        for topic, at in newest.items():
            if at > self._newest.get(topic, 0):
                self._newest[topic] = at
            self._quiet.pop(topic, None)
        self._topics.update(newest.keys(), behind.keys())
        wall_ms = int(wall * 1000)
        self._behind = frozenset(
            topic for topic, lag in behind.items() if not self._live(topic, lag, wall_ms)
        )
        for topic in self._behind:
            self._quiet.pop(topic, None)
        for topic in self._topics - self._behind - newest.keys():
            self._quiet[topic] = (self._quiet.get(topic, (wall, wall))[0], wall)

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
        return self._time_ms() - self._disorder_ms

    def read_up_to_ms(self) -> int:
        """Event time up to which every event has been read: all of it once caught up."""
        return self.due_ms() if self._behind else self._time_ms()

    def _quiet_for(self, topic: str) -> float:
        since, confirmed = self._quiet.get(topic, (0.0, 0.0))
        return confirmed - since

    def _time_ms(self) -> int:
        if self._behind:
            # A topic not read from yet holds time at its start: nothing is due.
            return min(self._newest.get(topic, 0) for topic in self._behind)
        wall_ms = int(self._wall() * 1000)
        stream = max(self._newest.values(), default=0)
        if wall_ms - stream <= _LIVE_WINDOW_MS:
            # Caught up on live traffic, the clock is event time: a pause between two
            # events does not hold a deadline back.
            return max(stream, wall_ms)
        quiet = {topic: self._quiet_for(topic) for topic in self._topics}
        settling = [self._newest.get(t, 0) for t, quiet_s in quiet.items() if quiet_s < _SETTLE_S]
        if settling:
            return min(settling)
        if all(quiet_s >= self._idle_s for quiet_s in quiet.values()):
            return max(stream, wall_ms)
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

    def rewind(self, partitions: Iterable[int]) -> None:
        """These partitions are read again from further back (their state lost writes):
        their time starts over, as on a fresh assignment, so that a timer armed again
        waits for what cancels it to be read again too."""
        for partition in partitions:
            if partition in self._clocks:
                self._clocks[partition] = self._new_clock()

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
            clock = self._clocks[partition] = self._new_clock()
        return clock

    def _new_clock(self) -> PartitionClock:
        return PartitionClock(self._disorder_ms, self._idle_s, self._wall)
