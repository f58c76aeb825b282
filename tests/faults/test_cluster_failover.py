"""Failover without loss, and its negative control: a primary of a Redis Cluster is killed
mid-drain, behind on its replica, and that replica takes over within cluster-node-timeout
and a stated margin.

The offsets of a batch are recorded only once replicas hold its effects
(handlers/replication.py): while the replica is stopped, the workers count the waits that
fell short (crmstream_replica_waits_short_total) and hand their batches over again, and
after the failover triggers and profiles come out exactly as the plain reference's. The
same run with CRMSTREAM_REDIS_WAIT_REPLICAS=0 loses profile updates, and says how many."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import pytest

from crmstream.settings import Settings
from handlers.keys import Keys
from tests.faults.losses import Losses, profile_losses
from tests.faults.run import FED, FaultRun, Verdict
from tests.faults.scenario import generate, seed_of
from tests.faults.services import own_cluster
from tests.faults.test_faults import verdict_holds
from tests.oracle.fault_triggers import FAULT_RULES
from tests.redis_contents import taken
from tests.support import eventually

pytestmark = [
    pytest.mark.redis_cluster,
    pytest.mark.faults,
    pytest.mark.slow,
    pytest.mark.integration,
    pytest.mark.timeout(900),
]
FILLER_BYTES: Final = 64 * 2**20
# Promotion takes cluster-node-timeout before a primary is taken for dead; then the
# failure report has to reach a majority of primaries, the replica waits 0.5 to 1 s
# before it stands for election, and an election that fails is tried again after twice
# the node timeout. The margin covers one such retry (4 s here) and 4 s for the rest on
# a shared machine; the local cluster's replicas take 3.7 to 4.3 s in all.
PROMOTION_MARGIN_S: Final = 8.0
# How long the workers may take to meet the stopped replica (a wait that falls short
# comes after CRMSTREAM_REDIS_WAIT_TIMEOUT_MS, 2 s).
EXPOSURE_LIMIT_S: Final = 60.0
# Without waits, the events taken while the replica is stopped before the primary dies.
TAKEN_WHILE_STOPPED: Final = 300


@dataclass
class Failover:
    verdict: Verdict
    node_timeout_s: float
    promoted_after_s: float
    short_waits: float
    losses: Losses


def fail_over(
    settings: Settings,
    tmp_path: Path,
    case: str,
    wait_replicas: int | None,
    exposed: Callable[[FaultRun, int], bool],
) -> Failover:
    """Drain the scenario on two workers over a cluster of the test's own; stop the replica
    of the primary that holds some partition's offsets, let the workers go on until
    ``exposed`` says they met it, kill the primary and let the replica take over."""
    scenario = generate(seed_of(121))
    rng = scenario.rng
    fault_settings = settings.model_copy(
        update={"triggers": settings.triggers.model_copy(update={"rules_dir": FAULT_RULES})}
    )
    with own_cluster(fault_settings, tmp_path / "cluster") as cluster:
        waits = cluster.settings.redis.model_copy(update={"wait_replicas": wait_replicas})
        mine = cluster.settings.model_copy(update={"redis": waits})
        node_timeout_s = cluster.node_timeout_s()
        bound_s = node_timeout_s + PROMOTION_MARGIN_S
        with FaultRun(case, mine, scenario, tmp_path, FED) as run:
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
            stopped_at = taken(mine)
            # Past what the sockets between them buffer: what the primary writes from now on
            # waits in its own memory, and dies with it.
            cluster.fill_replication_link(victim, offsets, FILLER_BYTES)
            eventually(
                lambda: exposed(run, stopped_at), EXPOSURE_LIMIT_S,
                "the workers meeting the stopped replica", every_s=0.2,
            )  # fmt: skip
            run.fleet.note(f"SIGKILL to the primary {victim.address} (partition {partition})")
            cluster.kill(victim)
            killed = time.monotonic()
            cluster.signal(replica, signal.SIGCONT)
            eventually(
                lambda: cluster.is_primary(replica), bound_s,
                f"{replica.address} promoted within cluster-node-timeout "
                f"{node_timeout_s:.1f} s + {PROMOTION_MARGIN_S:.0f} s",
            )  # fmt: skip
            promoted_after_s = time.monotonic() - killed
            run.fleet.note(f"{replica.address} promoted after {promoted_after_s:.1f}s")
            victim.start()  # it comes back as a replica of the one promoted
            eventually(victim.answers, 30, f"{victim.address} answering again")
            run.fleet.note(f"{victim.address} back, as a replica")
            verdict = run.judge()
            short_waits = run.fleet.metric("crmstream_replica_waits_short_total")
        losses = asyncio.run(profile_losses(mine, scenario.events))
    return Failover(verdict, node_timeout_s, promoted_after_s, short_waits, losses)


def test_primary_killed_behind_its_replica_which_is_promoted(
    settings: Settings, tmp_path: Path
) -> None:
    def held_back(run: FaultRun, _stopped_at: int) -> bool:
        return run.fleet.metric("crmstream_replica_waits_short_total") > 0

    failover = fail_over(settings, tmp_path, "primary SIGKILL, replica promoted", None, held_back)
    print(  # noqa: T201 -- the figures the README quotes
        f"promoted {failover.promoted_after_s:.1f}s after the kill (cluster-node-timeout "
        f"{failover.node_timeout_s:.1f}s); replica waits short: {failover.short_waits:.0f}; "
        f"{failover.losses}"
    )
    verdict_holds(failover.verdict)
    assert failover.short_waits > 0
    assert failover.losses.updates_lost == 0


@pytest.mark.faults_long
def test_without_waiting_for_replicas_the_same_failover_loses_updates(
    settings: Settings, tmp_path: Path
) -> None:
    def went_on(run: FaultRun, stopped_at: int) -> bool:
        return taken(run.settings) >= stopped_at + TAKEN_WHILE_STOPPED

    failover = fail_over(settings, tmp_path, "primary SIGKILL, no replica waited for", 0, went_on)
    print(  # noqa: T201 -- the figures the README quotes
        f"without waits: promoted {failover.promoted_after_s:.1f}s after the kill; "
        f"{failover.losses}; triggers missing {failover.verdict.missing}, "
        f"extra {failover.verdict.extra}"
    )
    assert failover.short_waits == 0
    assert failover.losses.updates_lost > 0, f"nothing lost: {failover.losses}"
