"""What a batch, a walk or a schedule pass decided, written in one round trip: the index
writes, the entries each partition puts off (through the partition timing), then the
candidates through the guards and the goal events of every shard (functions/emit.lua)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from crmstream.settings import TriggerSettings
from handlers.functions import FunctionLibrary
from handlers.functions.contract import Call
from handlers.functions.timers import LIBRARY as TIMER_LIBRARY
from handlers.functions.triggers import LIBRARY as TRIGGER_LIBRARY
from handlers.functions.triggers import Candidate, Emit, Goals
from handlers.redis_client import RedisClient
from handlers.timing import PartitionTiming
from handlers.triggers.indexes import IndexWork
from handlers.triggers.work import BatchWork, count_decisions

_DAY_MS = 86_400_000


def _higher_first(candidate: Candidate) -> int:
    return -candidate.priority


class TriggerWriter:
    def __init__(
        self,
        client: RedisClient,
        settings: TriggerSettings,
        timing: PartitionTiming,
        *,
        widest_goal_ms: Callable[[], int],
        wall_ms: Callable[[], int] = lambda: int(time.time() * 1000),
    ) -> None:
        self.client = client
        self.settings = settings
        self._timing = timing
        # The rules' widest goal window, as the rules loaded now have it.
        self._widest_goal_ms = widest_goal_ms
        # When a decision is taken, for max_age: the clock live; a backtest's event time.
        self.wall_ms = wall_ms
        self.fired_window_ms = settings.fired_window_days * _DAY_MS
        self._library = FunctionLibrary(client, (TRIGGER_LIBRARY, TIMER_LIBRARY), "trigger")
        # Set when triggers reach the outbox: its relay on this worker sends them at once
        # instead of at its next poll.
        self.sent = asyncio.Event()

    async def run(self, calls: Sequence[Call]) -> list[Any]:
        return await self._library.run(calls)

    async def submit(self, work: BatchWork, indexing: IndexWork | None = None) -> Counter[str]:
        calls: list[Call] = list(indexing.calls) if indexing is not None else []
        calls += self._timing.arm_calls(work.timer_ops)
        now_ms = self.wall_ms()
        emits: list[tuple[int, list[Candidate]]] = []
        for base, shard in work.shards.items():
            if shard.candidates:
                # Sends decided together are ranked: the higher priority meets the caps
                # first (stable, so equals keep the order they were decided in).
                shard.candidates.sort(key=_higher_first)
                emits.append((len(calls), shard.candidates))
                calls.append(
                    Emit(base, self.fired_window_ms, now_ms, self.settings.decision_log,
                         shard.candidates)
                )  # fmt: skip
            if shard.goal_events:
                # After the emits: a trigger of this batch before its goal converts at once.
                calls.append(Goals(base, self._widest_goal_ms(), shard.goal_events))
        outcomes: Counter[str] = Counter()
        commands = indexing.commands if indexing is not None else []
        if not calls and not commands:
            return outcomes

        def index_writes(pipe: Any) -> None:  # noqa: ANN401 -- a redis-py pipeline
            for command in commands:
                pipe.execute_command(*command)

        replies = await self._library.run(calls, before=index_writes)
        for position, candidates in emits:
            count_decisions(candidates, replies[position].decisions, outcomes)
        if outcomes["sent"]:
            self.sent.set()
        return +outcomes
