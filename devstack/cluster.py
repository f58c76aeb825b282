"""A local Redis Cluster: three primaries and three replicas of Debian's redis-server.

`stack up --redis-cluster` starts one redis-server per port (7000-7005 by default),
each with ``cluster-enabled yes`` and its own folder, then joins them with
``redis-cli --cluster create`` unless they already form a cluster. Running it again
changes nothing; `stack down` stops every node; `stack status` names each one.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import redis

from crmstream.errors import StackStartError
from devstack.probe import port_open
from devstack.process import ManagedProcess
from devstack.redis import server_config, start_server
from devstack.settings import StackSettings
from devstack.tools import require

PRIMARIES = 3
REPLICAS_PER_PRIMARY = 1
NODES = PRIMARIES * (1 + REPLICAS_PER_PRIMARY)
_HOST = "127.0.0.1"


def cluster_home(stack: StackSettings) -> Path:
    return stack.state_dir / "redis-cluster"


class ClusterNode:
    """One redis-server of the local cluster."""

    def __init__(self, stack: StackSettings, port: int) -> None:
        self.stack = stack
        self.port = port
        self.home = cluster_home(stack) / str(port)
        self.conf = self.home / "redis.conf"
        self.process = ManagedProcess(
            name=f"redis-{port}",
            pid_file=self.home / "redis.pid",
            log_file=self.home / "redis.log",
            # redis-server shows "<argv0> <host>:<port> [cluster]" once started.
            markers=(str(self.conf), f"redis-server {_HOST}:{port} [cluster]"),
        )

    @property
    def name(self) -> str:
        return f"redis-{self.port}"

    @property
    def address(self) -> str:
        return f"{_HOST}:{self.port}"

    def config(self) -> str:
        lines = [
            *server_config(_HOST, self.port, self.home, self.stack),
            "cluster-enabled yes",
            "cluster-config-file nodes.conf",
            # A primary that stops answering is replaced within seconds, not the default
            # 15: the failover test and a developer's patience both want it.
            "cluster-node-timeout 2000",
            # A replica promoted after its primary died is what the engine wants: the
            # offsets wait for replicas (handlers/replication.py), so it holds them all.
            "cluster-replica-validity-factor 0",
            # One primary gone must not stop the slots the others serve.
            "cluster-require-full-coverage no",
        ]
        return "\n".join(lines) + "\n"

    def start(self) -> int:
        return start_server(self.process, self.conf, self.config())

    def answers(self) -> bool:
        if not port_open(_HOST, self.port):
            return False
        client = redis.Redis(host=_HOST, port=self.port, socket_timeout=1.0)
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()


class LocalCluster:
    """The nodes of the local cluster and the step that joins them into one."""

    def __init__(
        self, stack: StackSettings, replicas_per_primary: int = REPLICAS_PER_PRIMARY
    ) -> None:
        first = stack.redis_cluster_first_port
        size = PRIMARIES * (1 + replicas_per_primary)
        self.nodes = [ClusterNode(stack, first + offset) for offset in range(size)]
        self.replicas_per_primary = replicas_per_primary
        self.timeout_s = stack.start_timeout_s

    @property
    def url(self) -> str:
        """What CRMSTREAM_REDIS_URL names with CRMSTREAM_REDIS_CLUSTER=true."""
        return f"redis://{self.nodes[0].address}/0"

    def primary_for(self, key: str) -> str:
        """The address of the primary that serves ``key`` now."""
        client = redis.RedisCluster.from_url(self.url, socket_timeout=2.0)
        try:
            return str(client.get_node_from_key(key).name)  # type: ignore[no-untyped-call]  # redis-py leaves it untyped
        finally:
            client.close()

    def replicas_of(self, primary: str) -> list[str]:
        """The addresses of the replicas of the primary at ``primary`` (host:port)."""
        client = redis.Redis.from_url(self.url, socket_timeout=2.0)
        try:
            raw = client.execute_command("CLUSTER", "NODES")  # type: ignore[no-untyped-call]  # redis-py leaves it untyped
        finally:
            client.close()
        text = raw.decode() if isinstance(raw, bytes) else str(raw)
        rows = [line.split() for line in text.splitlines() if line.strip()]
        ids = {row[1].split("@", 1)[0]: row[0] for row in rows}
        return [row[1].split("@", 1)[0] for row in rows if row[3] == ids.get(primary)]

    def formed(self) -> bool:
        """Every slot is served and every node agrees the cluster is healthy."""
        return all(_cluster_ok(node.port) for node in self.nodes)

    def form(self) -> None:
        """Join the nodes (a no-op when they already form a cluster), then wait until
        every node reports it healthy."""
        if not self.formed() and not _has_slots(self.nodes[0].port):
            command = [
                require("redis-cli"),
                "--cluster",
                "create",
                *(node.address for node in self.nodes),
                "--cluster-replicas",
                str(self.replicas_per_primary),
                "--cluster-yes",
            ]
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise StackStartError(
                    f"redis-cli --cluster create failed:\n{done.stdout[-2000:]}{done.stderr}"
                )
        _wait(self.formed, self.timeout_s, "the Redis Cluster did not become healthy")


def _info(port: int) -> dict[str, str]:
    client = redis.Redis(host=_HOST, port=port, socket_timeout=1.0)
    try:
        raw = client.execute_command("CLUSTER", "INFO")  # type: ignore[no-untyped-call]  # redis-py leaves it untyped
    except redis.RedisError:
        return {}
    finally:
        client.close()
    text = raw.decode() if isinstance(raw, bytes) else str(raw)
    return dict(line.split(":", 1) for line in text.split() if ":" in line)


def _cluster_ok(port: int) -> bool:
    info = _info(port)
    return info.get("cluster_state") == "ok" and info.get("cluster_slots_assigned") == "16384"


def _has_slots(port: int) -> bool:
    return _info(port).get("cluster_slots_assigned", "0") != "0"


def _wait(check: Callable[[], bool], timeout_s: float, failure: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise StackStartError(f"{failure} within {timeout_s:.0f}s")
