"""Crashing and restarting the services under the workers: a Redis of the test's own
(persisted with AOF, fsync every second) and the shared local broker."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from pydantic import RedisDsn

from crmstream.settings import Settings, StackSettings
from crmstream.stack import Stack
from crmstream.stack.kafka import KafkaBroker
from crmstream.stack.probe import kafka_answers, redis_answers
from crmstream.stack.redis import RedisServer
from tests.faults.harness import wait_for
from tests.support import free_port


class OwnRedis:
    """A redis-server on a port and state folder of its own, with the AOF on: a SIGKILL
    loses at most the last second, and a start on the same folder reloads the rest."""

    def __init__(self, settings: Settings, home: Path) -> None:
        self.settings = settings.model_copy(
            update={
                "redis": settings.redis.model_copy(
                    update={
                        "url": RedisDsn(f"redis://127.0.0.1:{free_port()}/0"),
                        "socket_timeout_s": 1.0,
                    }
                ),
                "stack": StackSettings(
                    state_dir=home / "state", cache_dir=home / "cache", redis_appendonly=True
                ),
            }
        )
        self.server = RedisServer(self.settings)
        assert "appendfsync everysec" in self.server.config()
        self.pid = 0

    def start(self) -> None:
        self.pid = self.server.start()
        assert wait_for(lambda: redis_answers(self.settings), 30, every_s=0.1), (
            self.server.process.log_tail()
        )

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
def broker_restored(settings: Settings) -> Iterator[KafkaBroker]:
    """The shared local broker, ours to restart (started by `crmstream stack up` with this
    state folder); up and answering again on the way out, whatever happened, since every
    other test runs against it."""
    broker = KafkaBroker(settings)
    assert broker.process.running_pid() is not None, (
        f"the broker at {broker.address} was not started from {settings.stack.state_dir}: "
        "run with CRMSTREAM_STACK_STATE_DIR set as the Makefile does"
    )
    try:
        yield broker
    finally:
        Stack(settings).up()
        assert wait_for(lambda: kafka_answers(settings), 120, every_s=0.5)


def restart_broker(settings: Settings, broker: KafkaBroker) -> float:
    """Stop the broker (SIGTERM, a controlled shutdown) and start it again; seconds down."""
    began = time.monotonic()
    broker.process.stop()
    Stack(settings).up()
    assert wait_for(lambda: kafka_answers(settings), 120, every_s=0.5)
    return time.monotonic() - began
