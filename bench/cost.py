"""What a timed drain cost: the worker processes' CPU (their own user and system time, from
/proc), Redis's CPU (INFO cpu, summed over every primary of a cluster) and the Redis
Functions' share of it (INFO commandstats: FCALL and FCALL_RO), per event handled.

A snapshot is taken when the first event is seen handled and again when the drain is
done, so the workers' start-up and group join are left out, as they are of the rate.
Redis counts everything it does meanwhile: measure on a stack nothing else uses.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from handlers.redis_client import SyncRedisClient

_TICKS_PER_S = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Snapshot:
    worker_cpu_s: float
    redis_cpu_s: float
    fcall_calls: int
    fcall_usec: int


@dataclass(frozen=True)
class Cost:
    """Per event handled between two snapshots."""

    events: int
    worker_us: float  # worker CPU (user + system)
    redis_us: float  # Redis CPU (user + system), every primary
    fcall_calls: float  # Function calls per event
    fcall_us_per_call: float  # Redis's own time in a Function call, as commandstats has it

    def as_dict(self) -> dict[str, float]:
        return {
            "events": self.events,
            "worker_us_per_event": self.worker_us,
            "redis_us_per_event": self.redis_us,
            "fcall_calls_per_event": self.fcall_calls,
            "fcall_us_per_call": self.fcall_us_per_call,
        }


def process_cpu_s(pid: int) -> float:
    """User and system time of a process so far (its threads included)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # After the command: state is field 3, so utime (14) and stime (15) are at 11 and 12.
    return (int(fields[11]) + int(fields[12])) / _TICKS_PER_S


def _infos(client: SyncRedisClient, section: str) -> list[dict[str, Any]]:
    if isinstance(client, redis.RedisCluster):
        found = client.info(section, target_nodes=redis.RedisCluster.PRIMARIES)
        return list(found.values()) if isinstance(found, dict) else []
    return [client.info(section)]


def snapshot(client: SyncRedisClient, pids: list[int]) -> Snapshot:
    cpu = sum(float(i["used_cpu_user"]) + float(i["used_cpu_sys"]) for i in _infos(client, "cpu"))
    calls = usec = 0
    for stats in _infos(client, "commandstats"):
        for name in ("cmdstat_fcall", "cmdstat_fcall_ro"):
            if name in stats:
                calls += int(stats[name]["calls"])
                usec += int(stats[name]["usec"])
    return Snapshot(sum(process_cpu_s(pid) for pid in pids), cpu, calls, usec)


def between(first: Snapshot, last: Snapshot, events: int) -> Cost:
    per = max(events, 1)
    calls = last.fcall_calls - first.fcall_calls
    return Cost(
        events=events,
        worker_us=(last.worker_cpu_s - first.worker_cpu_s) * 1e6 / per,
        redis_us=(last.redis_cpu_s - first.redis_cpu_s) * 1e6 / per,
        fcall_calls=calls / per,
        fcall_us_per_call=(last.fcall_usec - first.fcall_usec) / max(calls, 1),
    )
