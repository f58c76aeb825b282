"""Bring the local stack up and down, and say what runs where."""

from __future__ import annotations

import enum
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from crmstream.errors import StackStartError
from crmstream.settings import Settings
from devstack.cluster import LocalCluster, cluster_home
from devstack.kafka import KafkaBroker
from devstack.probe import kafka_answers, redis_answers
from devstack.process import ManagedProcess
from devstack.redis import RedisServer
from devstack.secure import (
    Material,
    SecureKafka,
    SecureRedis,
    secure_home,
    secure_settings,
    write_env,
)
from devstack.settings import StackSettings, local_hash_key_file

_SECURED = ("+tls", "+sasl_ssl")
_CLUSTER_NODE = "redis-"


class ServiceState(enum.StrEnum):
    STARTED = "started"  # this call started it
    RUNNING = "running"  # started earlier by `stack up`, still ours
    EXTERNAL = "external"  # answers, but we did not start it: used as it is
    STOPPED = "stopped"  # nothing answers
    UNHEALTHY = "unhealthy"  # our process lives but does not answer


@dataclass(frozen=True, slots=True)
class ServiceStatus:
    name: str
    address: str
    state: ServiceState
    pid: int | None = None
    seconds: float | None = None  # how long starting took, when this call started it

    def describe(self) -> str:
        pid = f" (pid {self.pid})" if self.pid else ""
        took = f" in {self.seconds:.1f}s" if self.seconds is not None else ""
        return f"{self.name:<14} {self.address:<21} {self.state.value}{pid}{took}"


@dataclass(frozen=True, slots=True)
class _Service:
    name: str
    address: str
    process: ManagedProcess
    answers: Callable[[], bool]
    start: Callable[[], int]


class Stack:
    """The local Kafka broker and Redis at the addresses of :class:`Settings`, kept as
    :class:`StackSettings` say."""

    def __init__(
        self,
        settings: Settings,
        stack: StackSettings,
        *,
        secure: bool = False,
        redis_cluster: bool = False,
    ) -> None:
        """``secure``: the secured broker and Redis as well (devstack/secure.py);
        ``redis_cluster``: the local Redis Cluster as well (devstack/cluster.py).
        Whenever either runs, it is reported and stopped with the rest."""
        self.settings = settings
        self.stack = stack
        broker = KafkaBroker(settings, stack)
        server = RedisServer(settings, stack)
        self._secure = secure
        # Settings that point the engine at a cluster want the cluster, not a single Redis.
        redis_cluster = redis_cluster or settings.redis.cluster
        self._cluster = LocalCluster(stack) if redis_cluster else None
        services = [
            _Service(
                "kafka", broker.address, broker.process, lambda: kafka_answers(settings),
                broker.start,
            ),
        ]  # fmt: skip
        if not settings.redis.cluster:
            services.insert(
                0,
                _Service(
                    "redis", server.address, server.process, lambda: redis_answers(settings),
                    server.start,
                ),
            )  # fmt: skip
        if secure or secure_home(stack).exists():
            secured = self._secured(settings, stack)
            if secure or any(service.process.running_pid() for service in secured):
                services += secured
        if redis_cluster or cluster_home(stack).exists():
            nodes = [
                _Service(node.name, node.address, node.process, node.answers, node.start)
                for node in LocalCluster(stack).nodes
            ]
            if redis_cluster or any(service.process.running_pid() for service in nodes):
                services += nodes
        self._services = tuple(services)

    @staticmethod
    def _secured(settings: Settings, stack: StackSettings) -> list[_Service]:
        broker, server = SecureKafka(settings, stack), SecureRedis(settings, stack)

        def clients() -> Settings:
            return secure_settings(settings, stack)

        def start_redis() -> int:
            write_env(settings, stack)
            return server.start()

        return [
            _Service(
                "redis+tls", server.address, server.process,
                lambda: redis_answers(clients()), start_redis,
            ),
            _Service(
                "kafka+sasl_ssl", broker.address, broker.process,
                lambda: kafka_answers(clients()), broker.start,
            ),
        ]  # fmt: skip

    def status(self) -> list[ServiceStatus]:
        return [self._status(service) for service in self._services]

    def up(self) -> list[ServiceStatus]:
        """Start what does not answer yet; wait until everything answers."""
        ensure_local_hash_key(self.stack)
        if self._secure:
            Material(self.stack).ensure()
        results = []
        for service in self._services:
            optional = (service.name.endswith(_SECURED) and not self._secure) or (
                service.name.startswith(_CLUSTER_NODE) and self._cluster is None
            )
            if optional:
                results.append(self._status(service))
                continue
            current = self._status(service)
            if current.state is ServiceState.UNHEALTHY:
                # Ours but deaf (e.g. a broker wedged by a full disk): restart it.
                service.process.stop()
            elif current.state is not ServiceState.STOPPED:
                results.append(current)
                continue
            results.append(self._start(service))
        if self._cluster is not None:
            self._cluster.form()
        return results

    def down(self) -> list[ServiceStatus]:
        """Stop what `up` started. Services we did not start are left alone."""
        results = []
        # Kafka first: it may still be writing when Redis goes.
        for service in reversed(self._services):
            pid = service.process.running_pid()
            service.process.stop()
            state = ServiceState.EXTERNAL if service.answers() else ServiceState.STOPPED
            results.append(ServiceStatus(service.name, service.address, state, pid))
        return list(reversed(results))

    def _status(self, service: _Service) -> ServiceStatus:
        pid = service.process.running_pid()
        answers = service.answers()
        if pid is not None:
            state = ServiceState.RUNNING if answers else ServiceState.UNHEALTHY
        else:
            state = ServiceState.EXTERNAL if answers else ServiceState.STOPPED
        return ServiceStatus(service.name, service.address, state, pid)

    def _start(self, service: _Service) -> ServiceStatus:
        began = time.monotonic()
        pid = service.start()
        deadline = began + self.stack.start_timeout_s
        while time.monotonic() < deadline:
            if service.answers():
                return ServiceStatus(
                    service.name,
                    service.address,
                    ServiceState.STARTED,
                    pid,
                    time.monotonic() - began,
                )
            if service.process.running_pid() is None:
                raise StackStartError(
                    f"{service.name} exited while starting; last lines of "
                    f"{service.process.log_file}:\n{service.process.log_tail()}"
                )
            time.sleep(0.2)
        service.process.stop()
        raise StackStartError(
            f"{service.name} did not answer at {service.address} within "
            f"{self.stack.start_timeout_s:.0f}s; see {service.process.log_file}"
        )


def ensure_local_hash_key(stack: StackSettings) -> None:
    """The local stack's own privacy hash key, made once (mode 0600) and kept in its state
    folder, so that importing a sheet with phone numbers works out of the box (the command
    line uses it when no key is configured). Production sets CRMSTREAM_PRIVACY_HASH_KEY
    instead, which always wins."""
    path = local_hash_key_file(stack)
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as key_file:
        key_file.write(secrets.token_hex(32) + "\n")
