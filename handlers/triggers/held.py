"""Triggers held for their customers' quiet hours, sent to the outbox once those end
(functions/emit.lua release), each logged as released."""

from __future__ import annotations

from handlers.functions.triggers import Release, Released
from handlers.keys import Keys
from handlers.triggers.writer import TriggerWriter


class HeldTriggers:
    def __init__(self, writer: TriggerWriter, keys: Keys, limit: int) -> None:
        self._writer = writer
        self._keys = keys
        self._limit = limit  # per shard and call

    async def release(self, now_ms: int) -> int:
        """Held triggers whose quiet hours are over by ``now_ms`` go out; returns how many."""
        writer = self._writer
        releases = [
            Release(base, now_ms, self._limit, writer.settings.decision_log,
                    writer.fired_window_ms)
            for base in self._keys.trigger_shards()
        ]  # fmt: skip
        replies: list[Released] = await writer.run(releases)
        released = sum(reply.released for reply in replies)
        if released:
            writer.sent.set()
        return released
