"""Writes acknowledged by replicas before anything that depends on them is recorded.

Redis replicates asynchronously: a primary that dies may take its last writes
with it when its replica is promoted. A batch's effects may lie on one primary
and its offsets on another, so the offsets must not be recorded before the
effects are on a replica, or a failover would keep offsets whose state is gone,
and nothing would read those events again. The same holds for a timer walk: its
triggers must be safe before the timers are struck off.

``WAIT`` waits for the writes of its own connection only, so each primary gets a
small write of its own followed by ``WAIT`` on one connection: the write's
replication offset is past every earlier write to that primary, whoever sent it.
That connection reads for the wait's timeout longer than any other: a socket timeout
that ended first would turn a short wait into a connection error, which holds the
batch back as well, but uncounted.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, Final

import redis.asyncio
from redis.asyncio.cluster import ClusterNode
from redis.crc import key_slot

from crmstream import metrics
from crmstream.connections import RedisSettings
from crmstream.errors import ReplicasBehindError
from handlers.key_tags import slot_tag
from handlers.keys import Keys
from handlers.redis_client import RedisClient, connect, connect_node

_MARK_TTL_MS: Final = 60_000


class Replication:
    """Waits until ``replicas`` replicas of every primary hold what was written so far."""

    def __init__(self, client: RedisClient, keys: Keys, settings: RedisSettings) -> None:
        self._client = client
        self._keys = keys
        self._settings = settings.model_copy(
            update={"socket_timeout_s": settings.socket_timeout_s + settings.wait_timeout_ms / 1000}
        )
        self._replicas = settings.replicas_to_wait_for
        self._timeout_ms = settings.wait_timeout_ms
        # Primary (host:port) → a slot it serves, where its mark is written.
        self._slots: dict[str, int] = {}
        self._direct_clients: dict[str, redis.asyncio.Redis] = {}

    @property
    def enabled(self) -> bool:
        return self._replicas > 0

    async def settle(self) -> None:
        """Returns once every primary's replicas acknowledged what it holds; raises
        ReplicasBehindError when one did not within the timeout (the caller's work is
        then tried again: consumption waits for a replica rather than risk its state)."""
        if not self._replicas:
            return
        client = self._client
        waits: list[tuple[str, Awaitable[list[Any]]]] = []
        if isinstance(client, redis.asyncio.RedisCluster):
            for node in client.get_primaries():
                mark = self._keys.replication_mark(slot_tag(self._slot_of(client, node.name)))
                waits.append((node.name, self._mark_and_wait(self._direct(node), mark)))
        else:
            mark = self._keys.replication_mark(slot_tag(0))
            waits.append(("redis", self._mark_and_wait(self._single(), mark)))
        replies = await asyncio.gather(*(wait for _, wait in waits))
        names = [name for name, _ in waits]
        short = [
            f"{name} ({int(acknowledged)} of {self._replicas})"
            for name, (_, acknowledged) in zip(names, replies, strict=True)
            if int(acknowledged) < self._replicas
        ]
        if short:
            metrics.REPLICA_WAITS_SHORT.inc()
            raise ReplicasBehindError(
                f"replicas did not acknowledge within {self._timeout_ms} ms: {', '.join(short)}"
            )

    async def _mark_and_wait(self, client: redis.asyncio.Redis, mark: str) -> list[Any]:
        pipe = client.pipeline(transaction=False)
        pipe.set(mark, "1", px=_MARK_TTL_MS)
        pipe.execute_command("WAIT", self._replicas, self._timeout_ms)
        return list(await pipe.execute())

    def _direct(self, node: ClusterNode) -> redis.asyncio.Redis:
        """A connection of its own to one primary: WAIT must follow the mark on the same
        connection, on that very node, where the cluster client might retry either
        elsewhere after a failover and count a healthy primary's replicas instead."""
        direct = self._direct_clients.get(node.name)
        if direct is None:
            direct = connect_node(self._settings, node.host, int(node.port))
            self._direct_clients[node.name] = direct
        return direct

    def _single(self) -> redis.asyncio.Redis:
        """One Redis: a connection of its own, for the longer read timeout."""
        direct = self._direct_clients.get("redis")
        if direct is None:
            single = connect(self._settings)
            assert isinstance(single, redis.asyncio.Redis)  # noqa: S101 -- not a cluster here
            direct = self._direct_clients["redis"] = single
        return direct

    async def close(self) -> None:
        for direct in self._direct_clients.values():
            await direct.aclose()
        self._direct_clients.clear()

    def _slot_of(self, client: redis.asyncio.RedisCluster, node_name: str) -> int:
        slot = self._slots.get(node_name)
        if slot is not None:
            owner = client.nodes_manager.get_node_from_slot(slot)
            if owner is not None and owner.name == node_name:
                return slot
        for candidate in range(0, 16384):
            owner = client.nodes_manager.get_node_from_slot(candidate)
            if owner is not None and owner.name == node_name:
                self._slots[node_name] = candidate
                return candidate
        # The slot map moved under us: any key will do, redis-py routes it.
        return key_slot(node_name.encode())
