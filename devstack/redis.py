"""Debian's redis-server on loopback: no persistence unless asked for (AOF)."""

from __future__ import annotations

import os
from pathlib import Path

from crmstream.settings import Settings
from devstack.process import ManagedProcess
from devstack.settings import StackSettings
from devstack.tools import require


class RedisServer:
    """The Redis of the local stack."""

    def __init__(self, settings: Settings, stack: StackSettings) -> None:
        self.settings = settings
        self.stack = stack
        self.home = stack.state_dir / "redis"
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
        lines = server_config(self.host, self.port, self.home, self.stack)
        if self.settings.redis.password:
            # In a 0600 file rather than on the command line, where `ps` would show it.
            lines.append(f'requirepass "{self.settings.redis.password.get_secret_value()}"')
        return "\n".join(lines) + "\n"

    def start(self) -> int:
        return start_server(self.process, self.conf, self.config())


def server_config(host: str, port: int, home: Path, stack: StackSettings) -> list[str]:
    """The lines every redis-server of the stack starts with (a cluster node adds its own)."""
    return [
        f"bind {host}",
        f"port {port}",
        f'dir "{home}"',
        "daemonize no",
        'save ""',
        f"appendonly {'yes' if stack.redis_appendonly else 'no'}",
        "appendfsync everysec",
        # Profiles, timers and the outbox must never be evicted to make room.
        "maxmemory-policy noeviction",
    ]


def start_server(process: ManagedProcess, conf_path: Path, conf: str) -> int:
    """Write ``conf`` (mode 0600: it may hold a password) and start redis-server on it."""
    server = require("redis-server")
    conf_path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(conf_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as out:
        out.write(conf)
    return process.spawn([server, str(conf_path)])
