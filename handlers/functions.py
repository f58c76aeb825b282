"""Redis Function libraries as a stage uses them: loaded once, and again if Redis lost them."""

from __future__ import annotations

import logging
import time
from typing import Any

from redis.exceptions import RedisError, ResponseError

from crmstream.metrics import RedisTimer
from handlers.redis_client import RedisClient, queued
from handlers.scripts import Library

log = logging.getLogger("crmstream.functions")


class FunctionLibrary:
    def __init__(
        self, client: RedisClient, library: Library | tuple[Library, ...], name: str
    ) -> None:
        self._client = client
        self._sources = [
            lib.source for lib in (library if isinstance(library, tuple) else (library,))
        ]
        self._name = name
        self._loaded = False
        self._timer = RedisTimer(name)

    async def load(self) -> None:
        """On every primary of a cluster (redis-py sends FUNCTION LOAD to each): a
        replica promoted later has them already, as they replicate like data."""
        for source in self._sources:
            await self._client.function_load(source, replace=True)
        self._loaded = True

    async def execute(self, pipe: Any) -> list[Any]:  # noqa: ANN401 -- a redis-py pipeline
        """Run a pipeline of this library's calls, loading it first if Redis lost it
        (restarted without persistence, or flushed); the calls must be safe to repeat."""
        if not self._loaded:
            await self.load()
        commands = queued(pipe)  # execute() empties it, even when it fails
        started = time.perf_counter()
        try:
            return list(await pipe.execute())
        except ResponseError as exc:
            if "Function not found" not in str(exc):
                self._timer.failed()
                raise
            log.warning("%s functions missing in Redis; loading them again", self._name)
            await self.load()
            again = self._client.pipeline(transaction=False)
            for args, options in commands:
                again.execute_command(*args, **options)
            return list(await again.execute())
        except (RedisError, OSError):
            self._timer.failed()
            raise
        finally:
            self._timer.observe(time.perf_counter() - started)
