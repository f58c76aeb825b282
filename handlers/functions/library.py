"""Redis Function libraries: built from their parts, named by their source, loaded, called.

A library's source is shared.lua, then what its Python module writes (each call's
layout, its reply's, the constants both sides use), then its own Lua files, then the
registration of each call's callback. Each library and each of its functions is named
with a digest of that source (``crm_emit_3f9a…``), so that workers of two versions can
share one Redis during a rolling deploy: each calls the code it was built with, and
loading one version never replaces the other's. ``rules backtest`` loads the same names
as the workers of its own version, with the same code.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.resources import files
from typing import Any, Final

from redis.asyncio.cluster import ClusterPipeline
from redis.exceptions import RedisClusterException, RedisError, ResponseError

from crmstream.metrics import RedisTimer
from handlers.functions.contract import Call
from handlers.functions.lua_layouts import lua_layout
from handlers.redis_client import RedisClient

log = logging.getLogger("crmstream.functions")

_LUA: Final = files("handlers.functions")


@dataclass(frozen=True, slots=True)
class Library:
    name: str  # as loaded, with its version
    source: str  # as loaded
    version: str
    calls: tuple[type[Call], ...]
    parts: tuple[str, ...]
    written: str  # what its module wrote besides the layouts

    @classmethod
    def build(
        cls, name: str, parts: Sequence[str], calls: Sequence[type[Call]], written: str = ""
    ) -> Library:
        """``parts``: the library's Lua files, in order; ``written``: what its module
        writes besides the calls' layouts (constants, key families)."""
        body = "\n".join(
            [
                "-- Built by handlers/functions/library.py; the layouts and constants below "
                "are written from Python.",
                _read("shared.lua"),
                *dict.fromkeys(  # a reply two calls share is written once
                    line for call in calls for line in lua_layout(call).splitlines()
                ),
                written,
                *(_read(part) for part in parts),
            ]
        )
        version = hashlib.sha256(body.encode()).hexdigest()[:10]
        registered = [
            f"redis.register_function{{function_name = '{call.FUNCTION}_{version}', "
            f"callback = {call.LUA}" + (", flags = {'no-writes'}}" if call.READ_ONLY else "}")
            for call in calls
        ]
        source = "\n".join([f"#!lua name={name}_{version}", body, *registered]) + "\n"
        return cls(f"{name}_{version}", source, version, tuple(calls), tuple(parts), written)

    def function(self, call: type[Call]) -> str:
        """The name ``call``'s Function is registered under (raises if not this library's)."""
        if call not in self.calls:
            raise ValueError(f"{self.name} has no function {call.FUNCTION}")
        return f"{call.FUNCTION}_{self.version}"


def queue_function(pipe: Any, function: str, call: Call) -> None:  # noqa: ANN401 -- a redis-py pipeline, of one Redis or of a cluster
    """Queue ``call`` as Function ``function`` on ``pipe``; its keys all lie in one slot.

    On a cluster the call is addressed to the node that serves that slot: left to
    itself, redis-py would ask a server for the keys of every FCALL (COMMAND GETKEYS,
    twice per call), which costs more than the calls themselves. Before the client
    has learnt the slot map, or when the slot moved, redis-py routes it as usual.
    """
    keys, args = call.encode()
    command = "FCALL_RO" if call.READ_ONLY else "FCALL"
    if isinstance(pipe, ClusterPipeline) and keys:
        with contextlib.suppress(RedisClusterException, KeyError, IndexError):
            node = pipe.cluster_client.get_node_from_key(keys[0])
            if node is not None:
                pipe.execute_command(command, function, len(keys), *keys, *args, target_nodes=node)
                return
    pipe.execute_command(command, function, len(keys), *keys, *args)


def _read(part: str) -> str:
    return (_LUA / part).read_text(encoding="utf-8")


def lua_sources(library: Library) -> str:
    """The library's own Lua, without shared.lua and what Python wrote: what reads the
    calls' names (tests/integration/test_function_contracts.py holds it to them)."""
    return "\n".join(_read(part) for part in library.parts)


class FunctionLibrary:
    """Libraries as a stage uses them: loaded once, and again if Redis lost them."""

    def __init__(
        self, client: RedisClient, library: Library | tuple[Library, ...], name: str
    ) -> None:
        self._client = client
        self._libraries = library if isinstance(library, tuple) else (library,)
        self._name = name
        self._loaded = False
        self._timer = RedisTimer(name)

    async def load(self) -> None:
        """On every primary of a cluster (redis-py sends FUNCTION LOAD to each): a
        replica promoted later has them already, as they replicate like data."""
        for library in self._libraries:
            await self._client.function_load(library.source, replace=True)
        self._loaded = True

    def _function(self, call: Call) -> str:
        for library in self._libraries:
            if type(call) in library.calls:
                return library.function(type(call))
        raise ValueError(f"{self._name} has no function {call.FUNCTION}")

    async def run(
        self,
        calls: Sequence[Call],
        *,
        before: Callable[[Any], None] | None = None,
        after: Callable[[Any], None] | None = None,
    ) -> list[Any]:
        """The calls, in one pipeline (one round trip per node), each reply decoded; the
        libraries are loaded first if Redis lost them (restarted without persistence,
        or flushed). ``before`` and ``after`` queue plain commands around the calls, in
        the same round trip, their replies dropped. All must be safe to repeat."""
        if not self._loaded:
            await self.load()
        started = time.perf_counter()
        try:
            try:
                plain, raw = await self._pipeline(calls, before, after)
            except ResponseError as exc:
                if "Function not found" not in str(exc):
                    raise
                log.warning("%s functions missing in Redis; loading them again", self._name)
                await self.load()
                plain, raw = await self._pipeline(calls, before, after)
        except (RedisError, OSError):
            self._timer.failed()
            raise
        finally:
            self._timer.observe(time.perf_counter() - started)
        replies = raw[plain : plain + len(calls)]
        return [call.decode(reply) for call, reply in zip(calls, replies, strict=True)]

    async def _pipeline(
        self,
        calls: Sequence[Call],
        before: Callable[[Any], None] | None,
        after: Callable[[Any], None] | None,
    ) -> tuple[int, list[Any]]:
        """How many plain commands went before the calls, and every reply."""
        pipe = self._client.pipeline(transaction=False)
        if before is not None:
            before(pipe)
        plain = len(pipe)
        for call in calls:
            queue_function(pipe, self._function(call), call)
        if after is not None:
            after(pipe)
        if len(pipe) == 0:
            return 0, []
        return plain, list(await pipe.execute())
