"""The pack journeys under faults, black-box: real workers read a seeded history of two
weeks of event time for a few hundred customers (some events published twice), something
unkind happens mid-drain, and the journey sends on the triggers topic must be exactly the
plain reference's (tests/oracle/journeys.py): none missing, none twice, none extra.

The history lies far enough in the past that every wait of it, the thirty days to the
repurchase reminder included, has ended by the time it is read.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

from crmstream.settings import Settings
from tests.faults.run import FED, FaultRun, Verdict
from tests.faults.scenario import Scenario, seed_of, with_redeliveries
from tests.faults.services import own_redis
from tests.journey_history import DAY_MS, cloud_event, gate_of, history
from tests.oracle import journeys as oracle
from tests.oracle.fault_triggers import Expected

pytestmark = [
    pytest.mark.faults,
    pytest.mark.slow,
    pytest.mark.integration,
    pytest.mark.timeout(900),
]
SHOP = "tea-house"


@pytest.fixture
def journey_settings(settings: Settings, tmp_path: Path) -> Settings:
    """No rules (the topic holds journey sends alone); every pack journey on."""
    rules, shops = tmp_path / "no-rules", tmp_path / "shops"
    rules.mkdir()
    shops.mkdir()
    (shops / "default.yaml").write_text(
        "journeys: [new-member-onboarding, post-purchase-care]\n", encoding="utf-8"
    )
    triggers = settings.triggers.model_copy(update={"rules_dir": rules, "daily_cap": 1000})
    profiles = settings.profiles.model_copy(update={"shop_config_dir": shops})
    return settings.model_copy(update={"triggers": triggers, "profiles": profiles})


def journey_scenario(seed: int, customers: int = 300) -> tuple[Scenario, dict[str, Expected]]:
    now_ms = int(time.time() * 1000)
    t0 = (now_ms - 80 * DAY_MS) // 60_000 * 60_000
    events, unreachable = history(seed, customers, t0, prefix=f"j{seed}")
    rng = random.Random(seed)
    published = with_redeliveries(rng, [cloud_event(event, SHOP) for event in events])
    gate = gate_of(unreachable)
    sent, _left = oracle.expected(SHOP, events, gate, now_ms)
    expected = {
        send.id: Expected(send.journey, SHOP, send.customer, f"{send.step}#{send.visit}")
        for send in sent
        if gate(send.customer, send.step) == "sent"
    }
    return Scenario(seed, rng, published, customers), expected


def verdict_holds(verdict: Verdict) -> None:
    assert not verdict.failures, verdict.report()


def test_journeys_with_three_workers_and_sigkills(
    journey_settings: Settings, tmp_path: Path
) -> None:
    scenario, expected = journey_scenario(seed_of(121))
    total, rng = len(scenario.events), scenario.rng
    kills = sorted(int(rng.uniform(0.15, 0.8) * total) for _ in range(2))
    with FaultRun(
        "journeys, three workers, two SIGKILLs", journey_settings, scenario, tmp_path, FED,
        feed_s=20, expected=expected,
    ) as run:  # fmt: skip
        for _ in range(3):
            run.fleet.start()
        run.sigkills_with_replacements(kills)
        verdict = run.judge()
    verdict_holds(verdict)


@pytest.mark.faults_long
@pytest.mark.single_redis
def test_journeys_with_redis_killed_and_restarted_from_its_aof(
    journey_settings: Settings, tmp_path: Path
) -> None:
    scenario, expected = journey_scenario(seed_of(122))
    with own_redis(journey_settings, tmp_path / "redis") as server:
        settings = server.settings
        with FaultRun(
            "journeys, Redis SIGKILL + AOF restart", settings, scenario, tmp_path, FED,
            expected=expected,
        ) as run:  # fmt: skip
            run.fleet.start()
            run.fleet.start()
            run.fleet.wait_taken(len(scenario.events) * 2 // 5)
            run.kill_redis_and_restart_it(server)
            verdict = run.judge()
    verdict_holds(verdict)
