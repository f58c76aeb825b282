"""Fault injection, black-box: with any number of workers, crashes, rebalances and service
restarts, the trigger ids on the triggers topic are exactly the plain reference's.

Each case publishes a seeded, timing-adversarial backlog (tests/faults/scenario.py), runs
real `crmstream worker` processes, does something unkind to them mid-drain, and judges
what reached the topic (tests/faults/run.py). FAULTS_SEED=<n> replays a printed seed.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from crmstream.settings import Settings
from devstack import StackSettings
from tests.faults.run import FED, FaultRun, Verdict
from tests.faults.scenario import generate, seed_of
from tests.faults.services import broker_restored, own_redis, restart_broker
from tests.oracle.fault_triggers import FAULT_RULES

pytestmark = [
    pytest.mark.faults,
    pytest.mark.slow,
    pytest.mark.integration,
    pytest.mark.timeout(900),
]
LONG = pytest.mark.faults_long


@pytest.fixture
def fault_settings(settings: Settings) -> Settings:
    triggers = settings.triggers.model_copy(update={"rules_dir": FAULT_RULES})
    return settings.model_copy(update={"triggers": triggers})


def with_partitions(settings: Settings, count: int) -> Settings:
    return settings.model_copy(
        update={"topics": settings.topics.model_copy(update={"event_partitions": count})}
    )


def verdict_holds(verdict: Verdict) -> None:
    assert not verdict.failures, verdict.report()


def just_workers(
    case: str,
    settings: Settings,
    tmp_path: Path,
    *,
    seed: int,
    workers: int,
    customers: int = 250,
    backlog_share: float = 1.0,
) -> None:
    scenario = generate(seed_of(seed), customers)
    with FaultRun(case, settings, scenario, tmp_path, backlog_share) as run:
        for _ in range(workers):
            run.fleet.start()
        verdict = run.judge()
    verdict_holds(verdict)


def test_one_worker(fault_settings: Settings, tmp_path: Path) -> None:
    just_workers("one worker", fault_settings, tmp_path, seed=101, workers=1)


def test_one_worker_fed_in_bursts(fault_settings: Settings, tmp_path: Path) -> None:
    """The same history as one worker's, half of it published while the worker runs: live
    traffic must fire the same timers as a backlog."""
    just_workers(
        "one worker, fed", fault_settings, tmp_path, seed=101, workers=1, backlog_share=FED
    )


def test_two_workers(fault_settings: Settings, tmp_path: Path) -> None:
    just_workers("two workers", fault_settings, tmp_path, seed=102, workers=2)


@LONG
def test_three_workers(fault_settings: Settings, tmp_path: Path) -> None:
    just_workers("three workers", fault_settings, tmp_path, seed=103, workers=3)


@LONG
def test_more_workers_than_partitions(fault_settings: Settings, tmp_path: Path) -> None:
    """Two partitions per event topic, three workers: one of them holds nothing at all."""
    settings = with_partitions(fault_settings, 2)
    just_workers("3 workers, 2 partitions", settings, tmp_path, seed=106, workers=3)


def test_few_customers_most_partitions_empty(fault_settings: Settings, tmp_path: Path) -> None:
    """Two customers over eight partitions and three workers: the idle partitions and the
    idle worker must hold nothing back, on-event triggers included."""
    just_workers(
        "2 customers, 3 workers", fault_settings, tmp_path, seed=116, workers=3, customers=2
    )


@LONG
def test_a_worker_joins_and_one_leaves_mid_drain(fault_settings: Settings, tmp_path: Path) -> None:
    scenario = generate(seed_of(104))
    total = len(scenario.events)
    with FaultRun("join and leave", fault_settings, scenario, tmp_path, FED) as run:
        first, second = run.fleet.start(), run.fleet.start()
        run.fleet.wait_taken(total // 4)
        run.fleet.start()
        run.fleet.wait_taken(total * 3 // 5)
        run.fleet.assert_alive(second)
        run.fleet.stop(first, signal.SIGTERM)
        verdict = run.judge()
    verdict_holds(verdict)


def test_three_sigkills_with_replacements(fault_settings: Settings, tmp_path: Path) -> None:
    scenario = generate(seed_of(105))
    total, rng = len(scenario.events), scenario.rng
    kills = sorted(int(rng.uniform(0.1, 0.85) * total) for _ in range(3))
    # Each replacement's join takes seconds while the others drain: fed for 30 s, the
    # drain is still going when the last kill lands, however fast the engine reads.
    with FaultRun("three SIGKILLs", fault_settings, scenario, tmp_path, FED, feed_s=30) as run:
        run.fleet.start()
        run.fleet.start()
        run.sigkills_with_replacements(kills)
        verdict = run.judge()
    verdict_holds(verdict)


@LONG
@pytest.mark.single_redis
def test_redis_killed_and_restarted_from_its_aof(fault_settings: Settings, tmp_path: Path) -> None:
    """SIGKILL loses up to a second of writes (appendfsync everysec); the workers must
    notice, catch up from Kafka, and neither lose nor add a trigger."""
    scenario = generate(seed_of(108))
    with own_redis(fault_settings, tmp_path / "redis") as server:
        settings = server.settings
        with FaultRun("Redis SIGKILL + AOF restart", settings, scenario, tmp_path, FED) as run:
            run.fleet.start()
            run.fleet.start()
            run.fleet.wait_taken(len(scenario.events) * 2 // 5)
            run.kill_redis_and_restart_it(server)
            verdict = run.judge()
    verdict_holds(verdict)


@LONG
def test_broker_restarted_mid_drain(
    fault_settings: Settings, stack_settings: StackSettings, tmp_path: Path
) -> None:
    scenario = generate(seed_of(109))
    with (
        broker_restored(fault_settings, stack_settings) as broker,
        FaultRun("broker restart", fault_settings, scenario, tmp_path, FED) as run,
    ):
        run.fleet.start()
        run.fleet.start()
        run.fleet.wait_taken(len(scenario.events) * 2 // 5)
        run.fleet.fault("broker stopping")
        down_s = restart_broker(fault_settings, broker)
        run.fleet.note(f"broker answering again after {down_s:.1f}s")
        verdict = run.judge()
    verdict_holds(verdict)
