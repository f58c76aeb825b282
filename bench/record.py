"""Results files: bench/results/<name>.json, each with the machine and the command that made it."""

from __future__ import annotations

import os
import platform
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

RESULTS = Path(__file__).parent / "results"


def write_results(name: str, command: str | None = None, **fields: object) -> Path:
    """Write bench/results/<name>.json: the figures, the machine, when, and how to rerun."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    document = {
        "benchmark": name,
        "command": command or f"python -m bench.{name}",
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        **fields,
    }
    path.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2))
    return path


def read_results() -> dict[str, dict[str, Any]]:
    """Every results file there is, by benchmark name."""
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(RESULTS.glob("*.json")):
        document = orjson.loads(path.read_bytes())
        found[str(document.get("benchmark", path.stem))] = document
    return found


def machine() -> dict[str, object]:
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "os": platform.platform(terse=True),
        "python": platform.python_version(),
        "redis": _version(["redis-server", "--version"]),
        "java": _version(["java", "-version"]),
    }


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.machine()


def _version(argv: list[str]) -> str | None:
    """The first line a program prints about its version (Java prints it on stderr)."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = (done.stdout or done.stderr).strip().splitlines()
    return lines[0] if lines else None
