"""Liveness and readiness, as a Kubernetes probe asks for them.

Alive: the event loop answers (the probe's request is served by it). Ready: Redis
answers, this worker holds partitions, and its batches are not stuck retrying
against a failing Redis. A worker that is not ready keeps running and catches up
once it is; the probe only stops sending it work (or traffic) meanwhile.
"""

from __future__ import annotations

import asyncio
import time
from typing import Final

from redis.exceptions import RedisError

from crmstream.settings import Settings
from handlers.redis_client import connect
from streams.consumer import EventConsumer
from streams.ingest import Ingest

_PING_TIMEOUT_S: Final = 1.0


class Readiness:
    def __init__(self, ingest: Ingest, consumer: EventConsumer, settings: Settings) -> None:
        self._ingest = ingest
        self._consumer = consumer
        self._client = connect(settings.redis)

    async def problems(self) -> list[str]:
        """Why this worker is not ready; empty when it is."""
        found = []
        try:
            await asyncio.wait_for(self._client.ping(), _PING_TIMEOUT_S)
        except (RedisError, OSError, TimeoutError) as exc:
            found.append(f"redis: {type(exc).__name__}: {exc}".rstrip(": "))
        if not self._consumer.partitions:
            found.append("kafka: no partitions assigned (joining the group, or no broker)")
        failing_since = self._ingest.failing_since
        if failing_since is not None:
            stalled = time.monotonic() - failing_since
            found.append(f"events: batches failing for {stalled:.0f}s, retried (see the log)")
        return found
