"""Services of a test's own, beside the suite's shared stack: a Redis to stop and resume,
and runs of ports a local Redis Cluster can take."""

from __future__ import annotations

import os
import signal
import socket
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from pydantic import RedisDsn

from crmstream.settings import Settings
from devstack import StackSettings
from devstack.redis import RedisServer
from tests.support import free_port


def free_port_run(count: int) -> int:
    """The first of ``count`` consecutive free ports whose Redis Cluster bus ports (+10000)
    are free as well.

    The search stays below the kernel's ephemeral range (32768 up, by default), where the
    local end of any outgoing connection may sit; and a port counts as free only if it can
    be bound, since a connect attempt says nothing of a port held by such a connection."""
    for first in range(20_000, 22_768 - count, count):
        ports = [*range(first, first + count), *range(first + 10_000, first + 10_000 + count)]
        if all(_bindable(port) for port in ports):
            return first
    raise AssertionError("no run of free ports for a Redis Cluster")


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@contextmanager
def redis_of_its_own(settings: Settings, tmp_path: Path) -> Iterator[tuple[Settings, int]]:
    """A Redis server of the test's own, to stop (SIGSTOP) and resume: the settings that
    use it, and its pid. Resumed and shut down at the end, whatever happened."""
    own = _with_own_redis(settings)
    server = RedisServer(
        own, StackSettings(state_dir=tmp_path / "redis", cache_dir=tmp_path / "cache")
    )
    pid = server.start()
    try:
        yield own, pid
    finally:
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)
        server.process.stop()


def _with_own_redis(settings: Settings) -> Settings:
    return settings.model_copy(
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
