"""A worker in a child process, for the demo (and the tests that drive a real worker)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path


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
