"""A worker in a child process, for the demo (and the tests that drive a real worker), and
the environment that gives a child process the same settings."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, SecretStr

from crmstream.settings import Settings


def start_worker(
    log: Path, env: Mapping[str, str] | None = None, loglevel: str = "warning"
) -> subprocess.Popen[bytes]:
    """`crmstream worker` with this interpreter, output appended to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "streams.cli", "worker", "--loglevel", loglevel],
            env={**os.environ, **(env or {})},
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )


def stop_worker(worker: subprocess.Popen[bytes], timeout_s: float = 30.0) -> None:
    """SIGTERM, so that it leaves the group cleanly; SIGKILL if it will not go."""
    worker.send_signal(signal.SIGTERM)
    try:
        worker.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait()


def settings_env(settings: Settings) -> dict[str, str]:
    """The CRMSTREAM_* variables that rebuild ``settings`` in a child process."""
    env: dict[str, str] = {}
    for group_name in Settings.model_fields:
        group = getattr(settings, group_name)
        if not isinstance(group, BaseModel):
            continue
        for field_name in type(group).model_fields:
            value = getattr(group, field_name)
            if value is None:
                continue
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            elif isinstance(value, bool):
                value = "true" if value else "false"
            env[f"CRMSTREAM_{group_name}_{field_name}".upper()] = str(value)
    return env
