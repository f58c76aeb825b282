"""Failover without loss: a primary of a Redis Cluster is killed mid-drain, behind on its
replica, and that replica takes over. The offsets of a batch are recorded only once
replicas hold its effects (handlers/replication.py), so the promoted replica has every
batch the offsets say was applied: triggers and profiles come out exactly as the plain
reference's. With CRMSTREAM_REDIS_WAIT_REPLICAS=0 the same run loses profile updates."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from crmstream.settings import Settings
from handlers.keys import Keys
from tests.faults.run import FED, FaultRun
from tests.faults.scenario import generate, seed_of
from tests.faults.services import own_cluster
from tests.faults.test_faults import verdict_holds
from tests.oracle.fault_triggers import FAULT_RULES
from tests.support import eventually

pytestmark = [
    pytest.mark.redis_cluster,
    pytest.mark.faults,
    pytest.mark.slow,
    pytest.mark.integration,
    pytest.mark.timeout(900),
]
FILLER_BYTES = 64 * 2**20


def test_primary_killed_behind_its_replica_which_is_promoted(
    settings: Settings, tmp_path: Path
) -> None:
    scenario = generate(seed_of(121))
    rng = scenario.rng
    fault_settings = settings.model_copy(
        update={"triggers": settings.triggers.model_copy(update={"rules_dir": FAULT_RULES})}
    )
    with own_cluster(fault_settings, tmp_path / "cluster") as cluster:
        mine = cluster.settings
        with FaultRun("primary SIGKILL, replica promoted", mine, scenario, tmp_path, FED) as run:
            run.fleet.start()
            run.fleet.start()
            run.fleet.wait_taken(len(scenario.events) * 2 // 5)
            # The primary that holds some partition's offsets and timers (and customers).
            partition = rng.randrange(mine.topics.event_partitions)
            offsets = Keys(mine.redis.key_prefix).partition(partition).offsets
            victim = cluster.primary_serving(offsets)
            replica = cluster.replica_of(victim)
            run.fleet.fault(f"SIGSTOP to {replica.address}, the replica of {victim.address}")
            cluster.signal(replica, signal.SIGSTOP)
            # Past what the sockets between them buffer: what the primary writes from now on
            # waits in its own memory, and dies with it.
            cluster.fill_replication_link(victim, offsets, FILLER_BYTES)
            filled = cluster.replication_offset(victim)
            eventually(
                lambda: cluster.replication_offset(victim), 60,
                "the workers writing to the primary past what its stopped replica holds",
                until=lambda written: written > filled,
            )  # fmt: skip
            run.fleet.note(f"SIGKILL to the primary {victim.address} (partition {partition})")
            cluster.kill(victim)
            cluster.signal(replica, signal.SIGCONT)
            eventually(
                lambda: cluster.primary_serving(offsets).address, 60,
                f"{replica.address} taking over from the killed primary",
                until=lambda serving: serving == replica.address,
            )  # fmt: skip
            run.fleet.note(f"{replica.address} promoted")
            victim.start()  # it comes back as a replica of the one promoted
            eventually(victim.answers, 30, f"{victim.address} answering again")
            run.fleet.note(f"{victim.address} back, as a replica")
            verdict = run.judge()
    verdict_holds(verdict)
