from __future__ import annotations

import subprocess
from pathlib import Path

from devstack.process import ManagedProcess


def _managed(tmp_path: Path, marker: str) -> ManagedProcess:
    return ManagedProcess("sleeper", tmp_path / "p.pid", tmp_path / "p.log", markers=(marker,))


def test_spawn_track_and_stop(tmp_path: Path) -> None:
    proc = _managed(tmp_path, "31337")
    pid = proc.spawn(["sleep", "31337"])
    assert proc.running_pid() == pid
    assert proc.stop(timeout_s=5)
    assert proc.running_pid() is None
    assert not proc.pid_file.exists()
    assert not proc.stop()


def test_stale_pid_file_is_not_ours(tmp_path: Path) -> None:
    proc = _managed(tmp_path, "31338")
    proc.pid_file.write_text("999999999\n")
    assert proc.running_pid() is None


def test_a_reused_pid_is_not_ours(tmp_path: Path) -> None:
    stranger = subprocess.Popen(["sleep", "30"])
    try:
        proc = _managed(tmp_path, "not-in-its-command-line")
        proc.pid_file.write_text(f"{stranger.pid}\n")
        assert proc.running_pid() is None
        assert not proc.stop()
        assert stranger.poll() is None  # left alone
    finally:
        stranger.kill()
        stranger.wait()


def test_pid_file_garbage_is_ignored(tmp_path: Path) -> None:
    proc = _managed(tmp_path, "x")
    proc.pid_file.write_text("not a pid")
    assert proc.running_pid() is None
    assert proc.pid_file.exists()
