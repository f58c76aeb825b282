"""The one owner of a partition's time: which partitions this worker holds, their clocks,
which of them put decisions off, and every call that moves their timing in Redis.

A customer's events travel in partition *p* of every event topic, and the consumer
gives partition *p* of every topic to one worker; what is due for that customer depends
only on how far *p* has been read (clock.py), as a Kafka Streams task owns its stream
time. The consumer says which partitions the worker owns (``assign``/``revoke``); from
then on a poll's word on any other partition is ignored, and no question about one
makes it this worker's again: a poll taken just before a rebalance must not make a
worker walk a partition it has given up (its walks would keep the new owner out).
Without a consumer (a backtest, a test driving the sink by hand), a partition observed
is owned from then on.

Walks take turns on this worker (each decides in event-time order), and a rebalance
waits for the one in flight before the partition changes hands. A walk hands what is
due to a decider and strikes it off only once the decider's triggers are in the outbox
(and on a replica): a walk repeated after a crash produces no second trigger.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

from handlers.functions import FunctionLibrary
from handlers.functions.contract import Call
from handlers.functions.timers import (
    LIBRARY,
    Arm,
    Decided,
    Done,
    Due,
    DueReply,
    Fence,
    LetGo,
    PutOff,
)
from handlers.keys import Keys
from handlers.redis_client import RedisClient
from handlers.timing.allowance import Allowances, WriteLateness
from handlers.timing.clock import PartitionClock
from handlers.timing.members import DueEntry, read_walks
from handlers.timing.polls import by_partition

log = logging.getLogger("crmstream.timers")

TopicPartition = tuple[str, int]
Decide = Callable[[list[DueEntry]], Awaitable[Counter[str]]]
_NOTHING: Final[Mapping[TopicPartition, int]] = {}
# A partition's walker keeps it while it comes back within this long; it lets go at once
# when a rebalance takes the partition, so this only keeps out a worker that lost it
# without knowing (paused past its session, say).
_HOLD_MS: Final = 5_000
# A tick walks again the partitions whose walk its limit cut short, this many times at most,
# so that arms and cancels keep pace with a busy partition and other chores still get a turn.
_ROUNDS: Final = 20


class Runner(Protocol):
    """Runs Function calls in one round trip (handlers/functions FunctionLibrary)."""

    async def run(self, calls: Sequence[Call]) -> list[Any]: ...


def timers_library(client: RedisClient) -> FunctionLibrary:
    return FunctionLibrary(client, LIBRARY, "timers")


@dataclass(frozen=True, slots=True)
class Walked:
    """What one walk did: outcomes of its decisions, and per partition whether its limit
    cut the walk short and how many decisions put off still wait."""

    outcomes: Counter[str]
    waiting: dict[int, tuple[bool, int]]


class PartitionTiming:
    def __init__(
        self,
        library: Runner,
        keys: Keys,
        allowances: Allowances,
        *,
        worker: str,
        limit: int,
        fence: Callable[[int], list[Fence]] = lambda _partition: [],
        settle: Callable[[], Awaitable[None]] | None = None,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._keys = keys
        self._allowances = allowances
        self._worker = worker
        self._limit = limit
        # Per partition, the offsets its state was last recorded at (handlers/offsets.py):
        # a walk decides nothing on a Redis that lost writes since.
        self._fence = fence
        # Waits until replicas hold a walk's triggers, before its entries are struck off.
        self._settle = settle
        self._wall = wall
        self._library = library  # the timers library (functions/timers.py)
        self._clocks: dict[int, PartitionClock] = {}
        # How late writes reach the broker, over every partition: a storefront server that
        # starts lagging writes to them all, and its first late record read on any of them
        # raises the allowance of each (allowance.py).
        self._lateness = WriteLateness(
            allowances.floor_ms, allowances.write_delay_ms, allowances.window_ms
        )
        self._assigned = False  # a consumer says which partitions are owned
        # Partitions whose decisions wait in event-time order: behind, or with decisions
        # put off while they were and not yet taken.
        self._deferring: set[int] = set()
        self._walking = asyncio.Lock()
        # Set by a poll that moved a live partition's time: what it made due is walked then
        # (the timers chore), not at the next tick.
        self.moved = asyncio.Event()

    # ------------------------------------------------------------------ ownership
    def assign(self, partitions: Iterable[int]) -> None:
        self._assigned = True
        for partition in partitions:
            self._clocks.setdefault(partition, self._new_clock())

    async def revoke(self, partitions: Iterable[int]) -> None:
        """A rebalance takes these partitions: no walk of theirs is in flight once this
        returns, none starts after, and their next owner need not wait for the hold."""
        taken = list(partitions)
        async with self._walking:
            for partition in taken:
                self._clocks.pop(partition, None)
                self._deferring.discard(partition)
            if taken:
                await self._library.run(
                    [LetGo(self._keys.partition(p), self._worker) for p in taken]
                )

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

    # ---------------------------------------------------------------- the clocks
    def observe(
        self,
        newest: Mapping[TopicPartition, int],
        behind: Mapping[TopicPartition, int | None],
        *,
        written: Mapping[TopicPartition, int] = _NOTHING,
        heard: Mapping[TopicPartition, int] = _NOTHING,
        late: Mapping[TopicPartition, int] = _NOTHING,
        appended: Collection[str] | None = None,
    ) -> None:
        """A poll of the consumer, per topic partition: the newest event time and record
        timestamp read; those with records still to read, and how many (None: unknown);
        those caught up, with when the broker last answered so (ms); those whose records
        all carried append times, with the largest (append time - event time) among them.
        ``appended``: the topics the broker stamps with append times."""
        polls = by_partition(newest, behind, written, heard, late)
        for partition, poll in polls.items():
            clock = self._clocks.get(partition)
            if clock is None:
                if self._assigned:
                    continue  # not ours (any more)
                clock = self._clocks[partition] = self._new_clock()
            clock.observe(
                poll.newest, poll.written, poll.lagging, poll.heard,
                late=poll.late, appended=appended,
            )  # fmt: skip
            if not clock.behind:  # a backlog's timers wait for it to be read anyway
                self.moved.set()

    def allowance_ms(self, partition: int) -> int | None:
        """How long decisions of ``partition`` wait for writes still on their way (None for
        one not owned)."""
        clock = self._clocks.get(partition)
        return None if clock is None else clock.allowance_ms()

    def behind(self, partition: int) -> bool:
        """Reading a backlog (or not this worker's, or not told yet): decisions wait."""
        clock = self._clocks.get(partition)
        return clock is None or clock.behind

    def due_ms(self, partition: int) -> int:
        """Event time deadlines of ``partition`` are due by (0 for one not owned)."""
        clock = self._clocks.get(partition)
        return 0 if clock is None else clock.due_ms()

    def read_up_to_ms(self, partition: int) -> int:
        """Event time up to which every event of ``partition`` has been read."""
        clock = self._clocks.get(partition)
        return 0 if clock is None else clock.read_up_to_ms()

    # ----------------------------------------------------------- put-off decisions
    def defer(self, partition: int) -> bool:
        """Whether decisions about this partition's events wait for its event time now (and
        stay in event-time order with what waits already). One not owned always waits: its
        owner decides it in its turn."""
        if partition not in self._clocks:
            return True
        if self._clocks[partition].behind:
            self._deferring.add(partition)
        return partition in self._deferring

    def would_defer(self, partition: int) -> bool:
        """What ``defer`` would answer now, without noting anything: a guess ahead of time."""
        clock = self._clocks.get(partition)
        return clock is None or clock.behind or partition in self._deferring

    def catching_up(self) -> list[int]:
        """Partitions caught up whose put-off decisions are still to be taken."""
        return [p for p in sorted(self._deferring) if not self.behind(p)]

    def _settled(self, partition: int) -> None:
        """Nothing put off waits for this partition any more: decide at once again."""
        if not self.behind(partition):
            self._deferring.discard(partition)

    # ------------------------------------------------------- what goes to Redis
    def arm_calls(self, entries: Mapping[int, Sequence[PutOff]]) -> list[Arm]:
        """The entries each partition puts off (arms, cancels, erasures, decisions put off),
        as the calls that put them there; sent with whatever else a batch writes."""
        return [Arm(self._keys.partition(p), list(ops)) for p, ops in entries.items() if ops]

    async def fire_due(self, decide: Decide) -> Counter[str]:
        """Every arm, cancel, timer and put-off decision due by its partition's event time,
        for every partition this worker owns (one walk of them all, and again of those
        that the walk's limit cut short)."""
        outcomes: Counter[str] = Counter()
        wanted: list[int] | None = None  # every partition owned, then those cut short
        for _ in range(_ROUNDS):
            walked = await self._walk(wanted, decide, read_up_to=False)
            outcomes.update(walked.outcomes)
            wanted = [p for p, (cut, _later) in walked.waiting.items() if cut]
            if not wanted:
                break
        return outcomes

    async def catch_up(self, decide: Decide) -> Counter[str]:
        """The partitions caught up decide everything put off, in order, up to what has
        been read; once nothing is left put off for one, its decisions are taken at once
        again."""
        outcomes: Counter[str] = Counter()
        wanted = self.catching_up()
        while wanted:
            walked = await self._walk(wanted, decide, read_up_to=True)
            outcomes.update(walked.outcomes)
            for partition, (cut, later) in walked.waiting.items():
                if not cut and later == 0:
                    self._settled(partition)
            wanted = [p for p, (cut, _later) in walked.waiting.items() if cut]
        return outcomes

    async def _walk(
        self, partitions: list[int] | None, decide: Decide, *, read_up_to: bool
    ) -> Walked:
        """One walk of ``partitions`` (None: every one this worker owns), in one round trip;
        what is due goes to ``decide``, and is struck off once decided."""
        async with self._walking:
            owned = [p for p in (self.partitions if partitions is None else partitions)
                     if self.owns(p)]  # fmt: skip  # a rebalance may have taken some meanwhile
            if not owned:
                return Walked(Counter(), {})
            up_to = self.read_up_to_ms if read_up_to else self.due_ms
            walks = [
                Due(self._keys.partition(p), up_to(p), self._limit, self._worker, _HOLD_MS,
                    self._fence(p))
                for p in owned
            ]  # fmt: skip
            replies: list[DueReply] = await self._library.run(walks)
            outcomes, waiting, due = read_walks(owned, replies)
            if not due:
                return Walked(+outcomes, waiting)
            outcomes.update(await decide([entry for entries in due.values() for entry in entries]))
            # Only once their triggers are in the outbox (or refused), and on a replica,
            # do the entries go.
            if self._settle is not None:
                await self._settle()
            done = [
                Done(self._keys.partition(p), [Decided(member, at) for member, at, _ in entries])
                for p, entries in due.items()
            ]
            await self._library.run(done)
            return Walked(outcomes, waiting)

    def _new_clock(self) -> PartitionClock:
        return PartitionClock(self._allowances, self._wall, self._lateness)
