"""Debian's redis-server on loopback: no persistence unless asked for (AOF)."""

from __future__ import annotations

import os

from crmstream.settings import Settings
from devstack.process import ManagedProcess
from devstack.tools import require


class RedisServer:
    """The Redis of the local stack."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.home = settings.stack.state_dir / "redis"
        self.host, self.port = settings.redis.host_port
        self.conf = self.home / "redis.conf"
        self.process = ManagedProcess(
            name="redis",
            pid_file=self.home / "redis.pid",
            log_file=self.home / "redis.log",
            # redis-server rewrites its command line to "<argv0> <host>:<port>" once started.
            markers=(str(self.conf), f"redis-server {self.host}:{self.port}"),
        )

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def config(self) -> str:
        lines = [
            f"bind {self.host}",
            f"port {self.port}",
            f'dir "{self.home}"',
            "daemonize no",
            'save ""',
            f"appendonly {'yes' if self.settings.stack.redis_appendonly else 'no'}",
            "appendfsync everysec",
            # Profiles, timers and the outbox must never be evicted to make room.
            "maxmemory-policy noeviction",
        ]
        if self.settings.redis.password:
            # In a 0600 file rather than on the command line, where `ps` would show it.
            lines.append(f'requirepass "{self.settings.redis.password.get_secret_value()}"')
        return "\n".join(lines) + "\n"

    def start(self) -> int:
        server = require("redis-server")
        self.home.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as conf:
            conf.write(self.config())
        return self.process.spawn([server, str(self.conf)])
