"""Where a worker's time goes: py-spy sampling a worker through one drain, summed up.

py-spy starts the worker as its child (so no ptrace permission beyond one's own
children is needed), samples only threads that are running, and on SIGINT writes
its raw stacks. They are read back two ways: the share of samples *inside* each
stage of a batch (inclusive), and the functions the samples were *in* (self).
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any, Final

from bench.contenders import crmstream
from bench.harness import Workspace
from crmstream.errors import BenchError

# The stages of a batch, as the functions that run them (py-spy names methods Class.method).
# Each share counts the samples with that function anywhere on the stack; what no stage
# holds is the event loop (waiting in epoll included), Faust's services, start-up imports,
# metrics and logging.
STAGES: Final = {
    "Kafka fetch (aiokafka)": ("AIOKafkaConsumer.getmany",),
    "decode and validate": ("Ingest.decode",),
    "profile stage": ("ProfileStage.apply",),
    "segment stage": ("SegmentStage.on_batch",),
    "rule stage": ("ProfilesAndTriggers._decide",),
    "timers and put-off rule decisions": ("TriggerChores._timers",),
    "outbox relays": ("OutboxRelay._run",),
    "offset commits": ("AIOKafkaConsumer.commit",),
}
_TOP = 15


def py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(found).exists():
        raise BenchError("py-spy is not installed (pip install py-spy)")
    return found


def profile(space: Workspace, sink: str | None, rate_hz: int = 100) -> dict[str, Any]:
    """One more drain of the scenario's topics, sampled; the summary of where time went."""
    raw = space.logs / "profile.txt"
    command = [py_spy(), "record", "--rate", str(rate_hz), "--format", "raw", "--output", str(raw)]

    def stop(proc: subprocess.Popen[bytes]) -> None:
        proc.send_signal(signal.SIGINT)  # py-spy writes what it sampled, then ends the worker
        proc.wait(timeout=60)

    crmstream(space, sink, settle=True, wrap=lambda argv: [*command, "--", *argv], stop=stop)
    if not raw.exists():
        raise BenchError(f"py-spy wrote nothing; see the logs in {space.logs}")
    return summarise(raw.read_text().splitlines())


def summarise(lines: list[str]) -> dict[str, Any]:
    """Shares of samples by stage (inclusive) and by function (self), from raw py-spy stacks."""
    total = 0
    own: Counter[str] = Counter()
    inside: Counter[str] = Counter()
    for line in lines:
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        samples = int(count)
        frames = [_function(frame) for frame in stack.split(";")]
        total += samples
        own[frames[-1]] += samples
        for name in {frame.partition(" (")[0] for frame in frames}:
            inside[name] += samples
    if not total:
        return {"samples": 0}
    stages = {stage: sum(inside[name] for name in names) / total for stage, names in STAGES.items()}
    return {
        "samples": total,
        "stages": stages,
        "self": [{"function": name, "share": n / total} for name, n in own.most_common(_TOP)],
    }


def _function(frame: str) -> str:
    """``Class.method (path/file.py:123)`` → ``Class.method (path/file.py)``: lines summed."""
    name, _, where = frame.partition(" (")
    return f"{name} ({where.rpartition(':')[0]})" if where else name
