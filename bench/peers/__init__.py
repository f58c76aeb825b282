"""Peers: the per-customer counter job of bench.naive, written with other stream frameworks.

Each peer reads the same topics from the earliest offset and, per batch of messages, sends one
Redis pipeline of ``HINCRBY``/``HSET`` updates, then ``INCRBY {prefix}:peer:taken`` so the
harness can see progress:

- ``quix_counters``: a quixstreams Application with a custom ``BatchingSink``;
- ``bytewax_counters``: a bytewax dataflow with ``KafkaSource`` and a custom ``DynamicSink``.

quixstreams pins older confluent-kafka and pydantic than crmstream, so the peers live in their
own virtualenv, ``bench/.venv-peers``, built from ``requirements.txt`` on first use. They take
their configuration from ``BENCH_PEER_*`` variables and import nothing from crmstream. This
module only prepares and describes that subprocess; it imports neither framework.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

PEERS = ("quix_counters", "bytewax_counters")

_HERE = Path(__file__).resolve().parent
REPO_ROOT = _HERE.parent.parent
REQUIREMENTS = _HERE / "requirements.txt"
VENV = REPO_ROOT / "bench" / ".venv-peers"
_STAMP = VENV / ".installed"


class PeerUnavailableError(RuntimeError):
    """The peers' virtualenv cannot be made here (no Python 3.11, no network, a failed build)."""


def _base_python() -> str:
    # The pins are checked on 3.11; another minor version may lack wheels for bytewax.
    if platform.python_version_tuple()[:2] == ("3", "11"):
        return sys.executable
    found = shutil.which("python3.11")
    if found is None:
        raise PeerUnavailableError("the benchmark peers need python3.11 on PATH")
    return found


def peer_python(name: str) -> Path:
    """The peers' interpreter, installing their virtualenv first if it is missing or stale."""
    if name not in PEERS:
        raise ValueError(f"unknown peer {name!r}; one of {', '.join(PEERS)}")
    python = VENV / "bin" / "python"
    installed = python.exists() and _STAMP.exists()
    if installed and _STAMP.stat().st_mtime >= REQUIREMENTS.stat().st_mtime:
        return python
    print(
        "installing benchmark peers (quixstreams, bytewax) into bench/.venv-peers ...",
        file=sys.stderr,
    )
    try:
        if not python.exists():
            subprocess.run([_base_python(), "-m", "venv", str(VENV)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "-r", str(REQUIREMENTS)],
            check=True,
        )
    except (OSError, subprocess.CalledProcessError) as exc:
        raise PeerUnavailableError(f"installing {REQUIREMENTS.name} failed: {exc}") from exc
    # Touched only after a complete install, so an interrupted one is retried next time.
    _STAMP.touch()
    return python


def peer_command(
    name: str,
    *,
    bootstrap: str,
    topics: Sequence[str],
    redis_url: str,
    prefix: str,
    group: str,
) -> tuple[list[str], dict[str, str]]:
    """Argv and full environment to run a peer as a subprocess; PeerUnavailableError if it cannot.

    PYTHONPATH points at REPO_ROOT, so the working directory does not matter.
    """
    argv = [str(peer_python(name)), "-m", f"bench.peers.{name}"]
    env = {
        **os.environ,
        # Only the repository itself: the caller's paths belong to crmstream's environment.
        "PYTHONPATH": str(REPO_ROOT),
        "BENCH_PEER_BOOTSTRAP": bootstrap,
        "BENCH_PEER_TOPICS": ",".join(topics),
        "BENCH_PEER_REDIS_URL": redis_url,
        "BENCH_PEER_PREFIX": prefix,
        "BENCH_PEER_GROUP": group,
    }
    return argv, env
