"""Crashing and restarting the services under the workers: a Redis or a Redis Cluster of
the test's own (persisted with AOF, fsync every second) and the shared local broker."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import redis
from pydantic import RedisDsn

from crmstream.settings import Settings
from devstack import Stack, StackSettings
from devstack.cluster import PRIMARIES, REPLICAS_PER_PRIMARY, ClusterNode, LocalCluster
from devstack.kafka import KafkaBroker
from devstack.probe import kafka_answers, redis_answers
from devstack.redis import RedisServer
from tests.own_services import free_port_run
from tests.support import eventually, free_port


class OwnRedis:
    """A redis-server on a port and state folder of its own, with the AOF on: a SIGKILL
    loses at most the last second, and a start on the same folder reloads the rest."""

    def __init__(self, settings: Settings, home: Path) -> None:
        self.settings = settings.model_copy(
            update={
                "redis": settings.redis.model_copy(
                    update={
                        "url": RedisDsn(f"redis://127.0.0.1:{free_port()}/0"),
                        "cluster": False,
                        "socket_timeout_s": 1.0,
                    }
                ),
            }
        )
        self.stack = StackSettings(
            state_dir=home / "state", cache_dir=home / "cache", redis_appendonly=True
        )
        self.server = RedisServer(self.settings, self.stack)
        assert "appendfsync everysec" in self.server.config()
        self.pid = 0

    def start(self) -> None:
        self.pid = self.server.start()
        # Seen while it does not answer: the tail of its log, to read a failure by.
        eventually(
            lambda: redis_answers(self.settings) or self.server.process.log_tail(), 30,
            "its own Redis answers", until=lambda seen: seen is True, every_s=0.1,
        )  # fmt: skip

    def kill(self) -> None:
        os.kill(self.pid, signal.SIGKILL)
        with suppress(ChildProcessError):
            os.waitpid(self.pid, 0)

    def stop(self) -> None:
        self.server.process.stop()


@contextmanager
def own_redis(settings: Settings, home: Path) -> Iterator[OwnRedis]:
    server = OwnRedis(settings, home)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def broker_restored(settings: Settings, stack: StackSettings) -> Iterator[KafkaBroker]:
    """The shared local broker, ours to restart (started by `crmstream stack up` with this
    state folder); up and answering again on the way out, whatever happened, since every
    other test runs against it."""
    broker = KafkaBroker(settings, stack)
    assert broker.process.running_pid() is not None, (
        f"the broker at {broker.address} was not started from {stack.state_dir}: "
        "run with CRMSTREAM_STACK_STATE_DIR set as the Makefile does"
    )
    try:
        yield broker
    finally:
        Stack(settings, stack).up()
        eventually(lambda: kafka_answers(settings), 120, "the broker answers", every_s=0.5)


def restart_broker(settings: Settings, broker: KafkaBroker) -> float:
    """Stop the broker (SIGTERM, a controlled shutdown) and start it again; seconds down."""
    began = time.monotonic()
    broker.process.stop()
    Stack(settings, broker.stack).up()
    eventually(lambda: kafka_answers(settings), 120, "the broker answers again", every_s=0.5)
    return time.monotonic() - began


class OwnCluster:
    """A Redis Cluster of the test's own (three primaries, three replicas unless told
    otherwise, AOF on), on ports no other test uses, so that a primary can be killed
    without touching theirs."""

    def __init__(
        self, settings: Settings, home: Path, replicas_per_primary: int = REPLICAS_PER_PRIMARY
    ) -> None:
        first = free_port_run(PRIMARIES * (1 + replicas_per_primary))
        self.settings = settings.model_copy(
            update={
                "redis": settings.redis.model_copy(
                    update={
                        "url": RedisDsn(f"redis://127.0.0.1:{first}/0"),
                        "cluster": True,
                        "socket_timeout_s": 1.0,
                    }
                ),
            }
        )
        stack = StackSettings(
            state_dir=home / "state",
            cache_dir=home / "cache",
            redis_appendonly=True,
            redis_cluster_first_port=first,
        )
        self.cluster = LocalCluster(stack, replicas_per_primary)

    def start(self) -> None:
        for node in self.cluster.nodes:
            if node.process.running_pid() is None:
                node.start()
        nodes = self.cluster.nodes
        eventually(
            lambda: {n.name: n.process.log_tail() for n in nodes if not n.answers()}, 30,
            "every node answers", until=lambda silent: not silent, every_s=0.1,
        )  # fmt: skip
        self.cluster.form()

    def primary_serving(self, key: str) -> ClusterNode:
        port = int(self.cluster.primary_for(key).rsplit(":", 1)[1])
        return next(node for node in self.cluster.nodes if node.port == port)

    def node_timeout_s(self) -> float:
        """cluster-node-timeout as the nodes run with it: how long a primary may be silent
        before the others take it for dead and its replica stands for election."""
        (timeout_ms,) = {self._config(node, "cluster-node-timeout") for node in self.cluster.nodes}
        return int(timeout_ms) / 1000

    def is_primary(self, node: ClusterNode) -> bool:
        """The node's own word (ROLE), which needs no other node to answer."""
        try:
            return bool(self._ask(node, "ROLE")[0] == b"master")
        except redis.RedisError:
            return False

    def _ask(self, node: ClusterNode, *command: str) -> Any:
        client = redis.Redis(host="127.0.0.1", port=node.port, socket_timeout=2)
        try:
            return client.execute_command(*command)  # type: ignore[no-untyped-call]  # redis-py leaves it untyped
        finally:
            client.close()

    def _config(self, node: ClusterNode, name: str) -> str:
        value = self._ask(node, "CONFIG", "GET", name)[name.encode()]
        return value.decode() if isinstance(value, bytes) else str(value)

    def replica_of(self, primary: ClusterNode) -> ClusterNode:
        (address,) = self.cluster.replicas_of(primary.address)
        return next(node for node in self.cluster.nodes if node.address == address)

    def signal(self, node: ClusterNode, sig: signal.Signals) -> None:
        pid = node.process.running_pid()
        assert pid is not None
        os.kill(pid, sig)

    def fill_replication_link(self, primary: ClusterNode, beside: str, size: int) -> None:
        """Write ``size`` bytes of filler to ``primary``, in the slot of the key ``beside``
        (so the primary serves it), and remove it: both go down the replication link."""
        filler = beside + ":filler"
        client = redis.Redis(host="127.0.0.1", port=primary.port, socket_timeout=10)
        try:
            chunk = b"x" * (4 * 2**20)
            for _ in range(size // len(chunk)):
                client.set(filler, chunk)
            client.delete(filler)
        finally:
            client.close()

    def replication_offset(self, node: ClusterNode) -> int:
        """How far ``node`` has written its replication stream (bytes since it began)."""
        client = redis.Redis(host="127.0.0.1", port=node.port, socket_timeout=10)
        try:
            return int(client.info("replication")["master_repl_offset"])
        finally:
            client.close()

    def kill(self, node: ClusterNode) -> None:
        pid = node.process.running_pid()
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        with suppress(ChildProcessError):
            os.waitpid(pid, 0)

    def stop(self) -> None:
        for node in self.cluster.nodes:
            node.process.stop()


@contextmanager
def own_cluster(
    settings: Settings, home: Path, replicas_per_primary: int = REPLICAS_PER_PRIMARY
) -> Iterator[OwnCluster]:
    cluster = OwnCluster(settings, home, replicas_per_primary)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()
