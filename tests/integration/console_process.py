"""A real `crmstream console` process for a test: its address, and its pid to watch."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from crmstream.settings import Settings
from streams.cli.child_worker import settings_env
from tests.support import free_port


@dataclass(frozen=True, slots=True)
class RunningConsole:
    base: str  # http://127.0.0.1:PORT
    pid: int


def wait_until(what: str, check: Callable[[], object], timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.5)


@contextmanager
def running_console(
    settings: Settings, log: Path, scratch: Path | None = None
) -> Iterator[RunningConsole]:
    """The console with ``settings`` (its caps included), stopped with SIGTERM; its
    temporary files in ``scratch`` when given."""
    port = free_port()
    with log.open("ab") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "streams.cli", "console", "--port", str(port)],
            env={
                **os.environ,
                **settings_env(settings),
                **({"TMPDIR": str(scratch)} if scratch else {}),
            },
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:

        def answers() -> bool:
            try:
                with urllib.request.urlopen(base + "/healthz", timeout=2):  # noqa: S310 -- loopback
                    return True
            except OSError:
                return process.poll() is not None  # gave up: the assertion below says so

        wait_until("the console answers", answers, 60)
        assert process.poll() is None, log.read_text()[-2000:]
        yield RunningConsole(base, process.pid)
    finally:
        process.terminate()
        process.wait(timeout=20)
