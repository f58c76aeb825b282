"""Event time per partition: when absence deadlines and put-off decisions fall due.

A customer's events all travel in partition *p* of every event topic, and the
consumer gives partition *p* of every topic to one worker. So what is due for
that customer depends only on how far partition *p* has been read: its event
time is kept per partition, like a Kafka Streams task's stream time, and workers
never agree on a clock between them. A worker that is idle, holds no partitions
or only empty ones holds nobody back.

The topics of one partition are lined up by when the storefront wrote each
record (its Kafka timestamp), not by event time. The consumer reads the five
topics at their own pace, and a producer's burst reaches them one by one; so an
event read on one topic counts towards time only once every other topic has been
read past the moment it was written:

- a topic with records still to read has been read up to the newest record
  taken from it, less ``write_delay``: how long a record written may take to
  reach the broker, where one written a moment earlier by another storefront
  server may still land after it;
- a topic caught up has been read up to the broker's last answer that it had
  nothing more, less ``write_delay`` too. A broker away, or a worker stalled on
  Redis, gives no such answer, and holds time where it is; once the broker is
  back, what storefronts wrote while it was away may come late, and for
  ``idle`` nothing written since it went away counts.

Time is the newest event read within that horizon. Caught up on every topic, it
runs on with the clock from the newest event, at the lateness that event was
written with: live traffic (written as it happens) keeps time with the clock,
and a pause in a replay of old events moves it on by the pause, not by hours.
Once every topic has been confirmed quiet for ``idle`` a replay is taken as
over, and the clock moves time on to now. Less, in every case, a small
allowance for events written a little out of order (``disorder``).

Topics set to ``message.timestamp.type=LogAppendTime`` need no ``write_delay``: each
record carries the broker's append time, which only grows along a topic partition, so
a topic read up to a record is read up to its append time exactly, and a topic caught
up up to the broker's answer, less a small margin for the network and the two clocks
(``floor``). What an event may still be on its way is then measured, not assumed:
the allowance is the largest (append time - event time) of the last moments
(allowance.py), and decisions wait that long past what has been read, tens of
milliseconds on a healthy stack. A poll that read records stamped by their producer
(written before the topic was set so) falls back to ``write_delay`` for them.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Collection, Mapping
from typing import Final

from handlers.timing.allowance import Allowances, WriteLateness

_LIVE_LAG: Final = 200  # records
_LIVE_WINDOW_MS: Final = 10_000


class PartitionClock:
    """How far one partition has been read, over every event topic."""

    def __init__(
        self,
        allowances: Allowances,
        wall: Callable[[], float],
        lateness: WriteLateness | None = None,
    ) -> None:
        a = allowances
        self._disorder_ms = a.disorder_ms
        # The broker answers a caught-up partition's fetch at least every fetch.max.wait.ms:
        # no answer for longer than this, it was away (the consumer reports a word this old
        # as unknown, by the same setting).
        self._away_ms = a.away_ms
        self._idle_ms = a.idle_ms
        self._write_delay_ms = a.write_delay_ms
        self._margin_ms = a.floor_ms
        self._wall = wall
        # Shared by a worker's partitions: a storefront that lags, lags on all of them.
        self._lateness = lateness or WriteLateness(a.floor_ms, a.write_delay_ms, a.window_ms)
        self._appended: Collection[str] = frozenset()  # topics the broker stamps
        # topic → whether what was last read there carried append times.
        self._stamped: dict[str, bool] = {}
        self._live_time = False  # time kept pace with the clock at its last reading
        self._newest: dict[str, int] = {}  # topic → newest event time read
        self._written: dict[str, int] = {}  # topic → newest record timestamp read
        # topic → the record timestamp up to which everything on it has been read.
        self._horizon: dict[str, int] = {}
        # topic → records still to read (None: unknown). Until the consumer has said where
        # this partition stands, nothing is known: a worker given a backlog must not
        # decide before it has read what came first.
        self._lagging: dict[str, int | None] = {}
        self._heard: dict[str, int] = {}  # caught-up topic → the broker's last answer (ms)
        self._caught_at: dict[str, int] = {}  # topic → when it was last caught up (ms)
        # The broker stopped answering (ms, its last answer before) and answered again on
        # every topic (ms): storefronts resend what they held meanwhile, late, so until
        # idle has passed since, what was written after it stopped may still arrive.
        self._away_since: int | None = None
        self._back_at: int | None = None
        # (written, event time) of what was read but is not yet within the horizon.
        self._pending: list[tuple[int, int]] = []
        self._settled_ms = 0  # newest event time within the horizon
        self._last: tuple[int, int] | None = None  # newest (written, event time) within it
        self._read_at_ms = int(wall() * 1000)  # when records last came (quiet starts over)
        self._floor_ms = 0  # time never runs backwards

    def observe(
        self,
        newest: Mapping[str, int],
        written: Mapping[str, int],
        lagging: Mapping[str, int | None],
        heard: Mapping[str, int],
        *,
        late: Mapping[str, int] | None = None,
        appended: Collection[str] | None = None,
    ) -> None:
        """A poll: per topic, the newest event time and record timestamp read, how many
        records are still to read (None: unknown), or, caught up, when the broker last
        answered so. A record timestamp not given is taken to be its event time.

        ``late``: per topic whose records read in this poll all carried the broker's
        append time, the largest (append time - event time) among them. ``appended``:
        the topics the broker stamps so (from their configuration)."""
        if appended is not None:
            self._appended = appended
        late = late or {}
        ceiling = self._lateness.ceiling_ms
        measures = [ms for ms in late.values() if ms <= ceiling]
        if measures:
            self._lateness.add(max(measures), int(self._wall() * 1000))
        for topic in newest:
            # A replayed or very late record read: its topic is lined up with the fixed
            # write delay again. A burst of old events reaches the broker in batches per
            # topic, and a batch appended a moment after another may hold what came first:
            # hours of event time, where live traffic's lateness covers it.
            self._stamped[topic] = late.get(topic, ceiling + 1) <= ceiling
        for topic, at in newest.items():
            wrote = written.get(topic, at)
            heapq.heappush(self._pending, (wrote, at))
            self._newest[topic] = max(at, self._newest.get(topic, at))
            self._written[topic] = max(wrote, self._written.get(topic, wrote))
        for topic, wrote in written.items():
            self._written[topic] = max(wrote, self._written.get(topic, wrote))
        if newest or written:
            self._read_at_ms = int(self._wall() * 1000)
        for topic, lag in lagging.items():
            self._lagging[topic] = lag
            answered = self._heard.pop(topic, None)
            if lag is None and answered is not None:
                self._away_since = min(answered, self._away_since or answered)
                self._back_at = None
            self._horizon[topic] = self._written.get(topic, 0)
        for topic, at in heard.items():
            self._lagging.pop(topic, None)
            answered = self._heard.get(topic)
            if answered is not None and at - answered > self._away_ms:
                # No word from the broker in between (away, or this worker stalled): the
                # same as a poll that found its word stale.
                self._away_since = min(answered, self._away_since or answered)
                self._back_at = None
            self._heard[topic] = self._caught_at[topic] = at
            self._horizon[topic] = max(self._written.get(topic, 0), at)
        for topic in newest.keys() - lagging.keys() - heard.keys():
            # Read by hand (a backtest, a test): caught up as far as it was written.
            self._lagging.pop(topic, None)
            self._horizon[topic] = max(self._horizon.get(topic, 0), self._written[topic])
        back = self._away_since is not None and self._back_at is None
        if back and None not in self._lagging.values():
            self._back_at = int(self._wall() * 1000)
        self._settle()

    def _horizon_ms(self) -> int:
        """The record timestamp up to which every topic has been read: on a topic with
        records to read, the newest read; on one caught up, the broker's last answer;
        less, with records stamped by their producer, the time a write may take to reach
        the broker, and with append times only a margin for the answer's own journey."""
        measured = self.measured
        delay, margin = self._write_delay_ms, self._margin_ms
        lagging, heard = self._lagging, self._heard
        horizon: int | None = None
        for topic, read_up_to in self._horizon.items():
            if topic in lagging:
                at = read_up_to if measured else max(0, read_up_to - delay)
            elif topic in heard:
                at = read_up_to - (margin if measured else delay)
            else:
                at = read_up_to  # read by hand: as far as it was written
            horizon = at if horizon is None or at < horizon else horizon
        away, back = self._away_since, self._back_at
        if away is not None:
            if back is None or int(self._wall() * 1000) < back + self._idle_ms:
                return min(horizon or 0, away - (margin if measured else delay))
            self._away_since = self._back_at = None
        return horizon or 0

    def _settle(self) -> None:
        horizon = self._horizon_ms()
        pending = self._pending
        while pending and pending[0][0] <= horizon:
            wrote, at = heapq.heappop(pending)
            self._settled_ms = max(self._settled_ms, at)
            if self._last is None or (wrote, at) > self._last:
                self._last = (wrote, at)

    @property
    def behind(self) -> bool:
        """Reading a backlog on some topic (or not told yet): decisions wait for time."""
        if not self._horizon:
            return True
        wall_ms = int(self._wall() * 1000)
        return any(not self._live(topic, lag, wall_ms) for topic, lag in self._lagging.items())

    def _live(self, topic: str, lag: int | None, wall_ms: int) -> bool:
        """A few records to read, on a topic that was read fresh or caught up a moment ago:
        live traffic, not a backlog. A quiet topic's newest event may be minutes old (a
        shop's reviews are sparse) while what just came to it is new."""
        if lag is None or lag > _LIVE_LAG:
            return False
        newest = self._newest.get(topic)
        recent = wall_ms - _LIVE_WINDOW_MS
        return (newest is not None and newest >= recent) or self._caught_at.get(topic, 0) >= recent

    def _exact(self, topic: str) -> bool:
        """The broker stamps this topic, and what was last read there carried its stamp."""
        return topic in self._appended and self._stamped.get(topic, True)

    @property
    def measured(self) -> bool:
        """Every topic is stamped by the broker: what may still be on its way is measured."""
        return bool(self._horizon) and all(self._exact(topic) for topic in self._horizon)

    def allowance_ms(self) -> int:
        """How far behind what has been read decisions wait, for writes still on their way."""
        if not self.measured:
            return self._write_delay_ms
        return self._lateness.allowance_ms(int(self._wall() * 1000))

    def due_ms(self) -> int:
        """Event time deadlines are due by."""
        time = self._time_ms()
        if not self.measured:
            return time - self._disorder_ms
        allowance = self._lateness.allowance_ms(int(self._wall() * 1000))
        # Old events replayed keep the allowance for a replay's own disorder.
        return time - (allowance if self._live_time else max(allowance, self._disorder_ms))

    def read_up_to_ms(self) -> int:
        """Event time up to which every event has been read: all of it once caught up
        (measured, only what no write still on its way can come before)."""
        return self.due_ms() if self.behind or self.measured else self._time_ms()

    def _time_ms(self) -> int:
        self._settle()
        at = self._settled_ms
        last = self._last
        self._live_time = last is not None and last[0] - last[1] <= _LIVE_WINDOW_MS
        if self._horizon and not self._lagging and len(self._heard) == len(self._horizon):
            horizon = self._horizon_ms()
            quiet_ms = min(self._heard.values()) - max(self._read_at_ms, self._back_at or 0)
            if last is not None and self._live_time:
                # Written as it happened: time keeps pace with the clock.
                at = max(at, last[1] + horizon - last[0])
            elif quiet_ms >= self._idle_ms:
                # Old events, and every topic quiet for a while: the replay is over.
                at = max(at, horizon)
        self._floor_ms = max(self._floor_ms, at)
        return self._floor_ms
