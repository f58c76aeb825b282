"""Failover without loss: a primary of a Redis Cluster is killed mid-drain and its replica
takes over. The offsets of a batch are recorded only once replicas hold its effects
(handlers/replication.py), so the promoted replica has every batch the offsets say was
applied: triggers and profiles come out exactly as the plain reference's."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from crmstream.settings import Settings
from handlers.keys import Keys
from tests.faults.harness import wait_for
from tests.faults.run import FED, FaultRun
from tests.faults.scenario import generate, seed_of
from tests.faults.services import own_cluster
from tests.faults.test_faults import verdict_holds
from tests.oracle.fault_triggers import FAULT_RULES

pytestmark = [
    pytest.mark.faults,
    pytest.mark.slow,
    pytest.mark.integration,
    pytest.mark.timeout(900),
]


def test_primary_killed_mid_drain_and_its_replica_promoted(
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
            victim = cluster.primary_serving(
                Keys(mine.redis.key_prefix).partition(partition).offsets
            )
            run.fleet.note(f"SIGKILL to the primary {victim.address} (partition {partition})")
            cluster.kill(victim)
            survivors = [node for node in cluster.cluster.nodes if node is not victim]
            promoted = wait_for(
                lambda: (
                    cluster.primary_serving(
                        Keys(mine.redis.key_prefix).partition(partition).offsets
                    )
                    is not victim
                ),
                60,
                every_s=0.2,
            )
            assert promoted, "no replica took over from the killed primary"
            run.fleet.note("a replica took over")
            time.sleep(1)
            victim.start()  # it comes back as a replica of the one promoted
            assert wait_for(lambda: all(node.answers() for node in survivors), 30)
            run.fleet.note(f"{victim.address} back, as a replica")
            verdict = run.judge()
    verdict_holds(verdict)
