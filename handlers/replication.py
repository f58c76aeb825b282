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
"""

from __future__ import annotations

import logging
from typing import Final

import redis.asyncio
from redis.crc import key_slot

from crmstream import metrics
from handlers.keys import Keys, slot_tag
from handlers.redis_client import RedisClient

log = logging.getLogger("crmstream.replication")

_MARK_TTL_MS: Final = 60_000


class Replication:
    """Waits until ``replicas`` replicas of every primary hold what was written so far."""

    def __init__(self, client: RedisClient, keys: Keys, replicas: int, timeout_ms: int) -> None:
        self._client = client
        self._keys = keys
        self._replicas = replicas
        self._timeout_ms = timeout_ms
        # Primary (host:port) → a slot it serves, where its mark is written.
        self._slots: dict[str, int] = {}

    @property
    def enabled(self) -> bool:
        return self._replicas > 0

    async def settle(self) -> None:
        """Returns once every primary's replicas acknowledged what it holds (or the
        timeout passed: then a warning, and the caller goes on, as Redis would)."""
        if not self._replicas:
            return
        client = self._client
        pipe = client.pipeline(transaction=False)
        if isinstance(client, redis.asyncio.RedisCluster):
            primaries = client.get_primaries()
            for node in primaries:
                mark = self._keys.replication_mark(slot_tag(self._slot_of(client, node.name)))
                pipe.execute_command("SET", mark, "1", "PX", _MARK_TTL_MS, target_nodes=node)
                pipe.execute_command("WAIT", self._replicas, self._timeout_ms, target_nodes=node)
            names = [node.name for node in primaries]
        else:
            pipe.set(self._keys.replication_mark(slot_tag(0)), "1", px=_MARK_TTL_MS)
            pipe.execute_command("WAIT", self._replicas, self._timeout_ms)
            names = ["redis"]
        replies = await pipe.execute()
        for name, acknowledged in zip(names, replies[1::2], strict=True):
            if int(acknowledged) < self._replicas:
                metrics.REPLICA_WAITS_SHORT.inc()
                log.warning(
                    "%s: %s of %d replicas acknowledged within %d ms; going on",
                    name, acknowledged, self._replicas, self._timeout_ms,
                )  # fmt: skip

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
