"""Background processes owned by the stack, tracked by pid files.

A pid file alone is not proof: after a crash or a reboot the pid may belong to
someone else. A pid counts as ours only while its command line still carries
the marker we started it with.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

_APPEND = os.O_WRONLY | os.O_CREAT | os.O_APPEND


@dataclass(frozen=True, slots=True)
class ManagedProcess:
    """One long-running program the stack starts and stops."""

    name: str
    pid_file: Path
    log_file: Path
    # Strings of which one is in /proc/<pid>/cmdline of our process only (a program that
    # rewrites its title, as redis-server does, needs one before and one after).
    markers: tuple[str, ...]

    def running_pid(self) -> int | None:
        """The pid from the pid file if that process is alive and still ours."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        if not _alive(pid) or not self._is_ours(pid):
            return None
        return pid

    def spawn(self, argv: list[str], env: dict[str, str] | None = None) -> int:
        """Start argv detached in its own session, output appended to the log file.

        posix_spawn rather than Popen: the process outlives us by design, and a
        Popen object would complain about a child it never waited for.
        """
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        pid = os.posix_spawnp(
            argv[0],
            argv,
            {**os.environ, **(env or {})},
            file_actions=[
                (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                (os.POSIX_SPAWN_OPEN, 1, str(self.log_file), _APPEND, 0o644),
                (os.POSIX_SPAWN_DUP2, 1, 2),
            ],
            # Its own session: a Ctrl-C in the terminal that ran `stack up` must not stop it.
            setsid=True,
        )
        self.pid_file.write_text(f"{pid}\n")
        # Until the child has exec'd, /proc shows our own command line, not its marker.
        deadline = time.monotonic() + 5.0
        while not self._is_ours(pid) and _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.01)
        return pid

    def stop(self, timeout_s: float = 30.0) -> bool:
        """Stop our process (TERM, then KILL after timeout). Returns whether one was running."""
        pid = self.running_pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        _signal(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _alive(pid):
            _signal(pid, signal.SIGKILL)
            while _alive(pid):
                time.sleep(0.05)
        self.pid_file.unlink(missing_ok=True)
        return True

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_file.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def _is_ours(self, pid: int) -> bool:
        proc = Path("/proc") / str(pid)
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            return False
        return any(marker in cmdline for marker in self.markers)


def _alive(pid: int) -> bool:
    # Reap it if it is our own child that has exited, so it does not linger as a zombie.
    with contextlib.suppress(ChildProcessError):
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, but someone else's
        return True
    # A zombie has exited; only its parent has not reaped it yet.
    with contextlib.suppress(OSError):
        stat = (Path("/proc") / str(pid) / "stat").read_text()
        if stat.rpartition(")")[2].split()[0] == "Z":
            return False
    return True


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
