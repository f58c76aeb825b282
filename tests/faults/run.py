"""One fault run: publish the scenario, let the test drive the workers, then judge what
reached the triggers topic against the plain reference, and say why when it is wrong."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self, TypeVar, cast

import orjson

from crmstream.admin import create_topics
from crmstream.settings import Settings
from handlers.keys import Keys
from handlers.profile.read import ProfileReader
from handlers.redis_client import connect
from handlers.shop_configs import ShopConfigs
from rules.folders import shop_configs_folder
from tests.faults.harness import Feed, Fleet, TriggerTap, engine_state, publish
from tests.faults.scenario import Scenario
from tests.faults.services import OwnRedis
from tests.oracle.fault_triggers import Expected, expected_triggers
from tests.oracle.profiles import mismatches
from tests.support import WaitError, backlog_read, eventually, eventually_async

ARRIVAL_BOUND_S = 60.0  # every expected trigger on the topic this long after the backlog is read
DRAIN_LIMIT_S = 300.0
RELAY_LIMIT_S = 60.0  # for the outboxes to empty onto the topic and the tap to read it all
PROFILES_LIMIT_S = 60.0
# The share published before any worker starts (FAULTS_BACKLOG_SHARE overrides every case's);
# the rest is fed in chunks while they run. A whole backlog is read in seconds, too soon for
# a fault to land in it, so the fault cases feed half of it.
BACKLOG: Final = 1.0
FED: Final = 0.5
FEED_CHUNKS, FEED_PAUSE_S = 10, 0.3

Occurrence = tuple[str, str, str, str]
Seen = TypeVar("Seen")


def occurrence_of(trigger: dict[str, Any]) -> Occurrence:
    """A rule's occurrence, or a journey instance's step (its sends share a cause)."""
    data = trigger["data"]
    caused_by = data.get("caused_by") or [""]
    step = data.get("journey_step")
    cause = caused_by[0] if step is None else f"{caused_by[0]}#{step}"
    return data["rule"], trigger["shop"], trigger["subject"], cause


@dataclass
class Verdict:
    case: str
    seed: int
    events: int
    expected: dict[str, Expected]
    found: list[dict[str, Any]]
    arrived_ms: dict[str, int]
    drained_in_s: float | None  # None: the group never committed every partition
    schedule: list[str]
    logs: str
    logs_dir: Path
    backlog_share: float
    state: str
    profiles: tuple[int, list[str]] = (0, [])
    failures: list[str] = field(default_factory=list)
    missing: int = 0
    extra: int = 0
    latest_s: float = 0.0

    def judge(self, backlog_read_ms: int) -> None:
        ids = set(self.arrived_ms)
        missing = [self.expected[i] for i in sorted(self.expected.keys() - ids)]
        extra = {t["id"]: occurrence_of(t) for t in self.found if t["id"] not in self.expected}
        late = {
            i: (self.arrived_ms[i] - backlog_read_ms) / 1000
            for i in self.expected.keys() & ids
            if self.arrived_ms[i] - backlog_read_ms > ARRIVAL_BOUND_S * 1000
        }
        arrival = [self.arrived_ms[i] - backlog_read_ms for i in self.expected.keys() & ids]
        self.latest_s = max([0, *arrival]) / 1000
        per_occurrence: dict[Occurrence, set[str]] = {}
        for trigger in self.found:
            per_occurrence.setdefault(occurrence_of(trigger), set()).add(trigger["id"])
        doubled = {o: sorted(i) for o, i in per_occurrence.items() if len(i) > 1}
        if self.drained_in_s is None:
            self.failures.append(f"backlog not read within {DRAIN_LIMIT_S:.0f}s")
        if missing:
            self.failures.append(f"{len(missing)} missing: {_first(missing)}")
        if extra:
            self.failures.append(f"{len(extra)} extra: {_first(list(extra.values()))}")
        if doubled:
            self.failures.append(f"{len(doubled)} occurrences under two ids: {_first(doubled)}")
        if late:
            self.failures.append(f"{len(late)} later than {ARRIVAL_BOUND_S:.0f}s: {_first(late)}")
        if self.profiles[1]:
            self.failures.append(f"profiles differ: {self.profiles[1]}")
        self.missing, self.extra = len(missing), len(extra)

    def summary(self) -> str:
        drained = "never" if self.drained_in_s is None else f"{self.drained_in_s:.1f}s"
        return (
            f"[{self.case}] seed={self.seed} events={self.events} backlog={self.backlog_share} "
            f"expected={len(self.expected)} "
            f"found={len(set(self.arrived_ms))} (messages {len(self.found)}) "
            f"missing={self.missing} extra={self.extra} backlog read after {drained}, "
            f"last expected trigger {self.latest_s:.1f}s after it (bound {ARRIVAL_BOUND_S:.0f}s); "
            f"profiles compared {self.profiles[0]}, differing {len(self.profiles[1])}"
        )

    def report(self) -> str:
        lines = [self.summary(), "schedule:", *(f"  {s}" for s in self.schedule)]
        lines.append(f"logs and triggers.jsonl in {self.logs_dir}")
        lines += [f"FAIL {failure}" for failure in self.failures]
        if self.failures:
            lines += [self.state, self.logs]
        return "\n".join(lines)


def _first(items: Any, count: int = 10) -> str:
    return repr(list(items.items())[:count] if isinstance(items, dict) else items[:count])


class FaultRun:
    """Topics made and the scenario published on entry; workers and the tap stopped on exit."""

    def __init__(
        self,
        case: str,
        settings: Settings,
        scenario: Scenario,
        logs: Path,
        backlog_share: float = BACKLOG,
        *,
        feed_s: float = FEED_CHUNKS * FEED_PAUSE_S,
        expected: dict[str, Expected] | None = None,
    ) -> None:
        """``feed_s``: how long the part of the scenario not in the backlog takes to publish
        (a case whose faults take longer to land than the engine takes to drain needs the
        drain fed that long, or its last fault would land after it); ``expected``: the
        triggers the topic must hold (by default, the fault rules' reference's)."""
        self.case, self.settings, self.scenario = case, settings, scenario
        self.feed_chunks = max(FEED_CHUNKS, round(feed_s / FEED_PAUSE_S))
        self.backlog_share = float(os.environ.get("FAULTS_BACKLOG_SHARE", backlog_share))
        self.exits = ExitStack()
        self.fleet = Fleet(settings, logs, self.exits, scenario.unique)
        self.expected = expected_triggers(scenario.events) if expected is None else expected

    def __enter__(self) -> Self:
        create_topics(self.settings)
        events = self.scenario.events
        head = int(len(events) * self.backlog_share)
        publish(self.settings, events[:head])
        self.feed = Feed(self.settings, events[head:], self.feed_chunks, FEED_PAUSE_S)
        self.feed.start()
        self.tap = TriggerTap(self.settings)
        self.tap.start()
        self.exits.callback(self.tap.stop)
        self.fleet.began = time.monotonic()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.exits.close()

    @staticmethod
    def _met(
        waits: list[str],
        check: Callable[[], Seen],
        timeout_s: float,
        what: str,
        until: Callable[[Seen], object] = bool,
    ) -> bool:
        """Whether what the run waits for came about; if not, why goes into ``waits``,
        which the verdict counts as failures."""
        try:
            eventually(check, timeout_s, what, until=until, every_s=0.25)
        except WaitError as never:
            waits.append(str(never))
            return False
        return True

    def sigkills_with_replacements(self, at_taken: Sequence[int]) -> None:
        """A worker chosen at random SIGKILLed once the fleet has taken each count of
        events, and a replacement started each time. Taken moves in whole batches: two
        points in one jump would be one crash, twice; so each kill waits for the last
        replacement to have joined the group and for the workers to have taken more since
        the last kill."""
        rng = self.scenario.rng
        before, joining = 0, ""
        for at in at_taken:
            if joining:
                self.fleet.wait_joined(joining)
            before = self.fleet.wait_taken(max(at, before + 1))
            victim = rng.choice(sorted(self.fleet.alive()))
            self.fleet.stop(victim, signal.SIGKILL)
            joining = self.fleet.start()

    def kill_redis_and_restart_it(self, server: OwnRedis) -> None:
        """SIGKILL to the workers' Redis, down until they have felt it (not for a time they
        may not have used), then started again from its AOF."""
        retries = self.fleet.logged("retrying")
        self.fleet.fault("SIGKILL to redis")
        server.kill()
        eventually(
            lambda: self.fleet.logged("retrying"), 60, "a worker retrying on a Redis gone",
            until=lambda count: count > retries,
        )  # fmt: skip
        server.start()
        self.fleet.note("redis restarted from its AOF")

    def judge(self) -> Verdict:
        """Wait for the backlog to be read and the triggers to arrive; compare."""
        self.feed.join(DRAIN_LIMIT_S)
        waits: list[str] = [] if self.feed.failure is None else [str(self.feed.failure)]
        drained = self._met(
            waits, lambda: backlog_read(self.settings), DRAIN_LIMIT_S, "the backlog read"
        )
        read_at_ms = int(time.time() * 1000)
        drained_after = time.monotonic() - self.fleet.began
        self.fleet.note("backlog read" if drained else "backlog NOT read")
        # The verdict counts what is missing and what came late; the wait only bounds it.
        self._met(
            waits, lambda: self.expected.keys() - self.tap.ids(), ARRIVAL_BOUND_S,
            "every expected trigger on the topic", until=lambda missing: not missing,
        )  # fmt: skip
        # Anything extra has been relayed and read by now, or is still to come: wait for
        # the outboxes to empty onto the topic and the tap to read to its end.
        self._met(
            waits, lambda: self.tap.behind(self.settings), RELAY_LIMIT_S,
            "every trigger relayed and read", until=lambda behind: not behind,
        )  # fmt: skip
        # Kept beside the worker logs, to read a failure by (trigger ids, with the seed).
        (self.fleet.logs / "triggers.jsonl").write_bytes(
            b"".join(orjson.dumps(trigger) + b"\n" for trigger in self.tap.found)
        )
        verdict = Verdict(
            case=self.case,
            seed=self.scenario.seed,
            events=len(self.scenario.events),
            expected=self.expected,
            found=list(self.tap.found),
            arrived_ms=dict(self.tap.arrived_ms),
            drained_in_s=drained_after if drained else None,
            schedule=self.fleet.schedule,
            logs=self.fleet.tails(),
            logs_dir=self.fleet.logs,
            backlog_share=self.backlog_share,
            state=engine_state(self.settings),
        )
        verdict.profiles = asyncio.run(profiles_converge(self.settings, self.scenario.events))
        verdict.judge(read_at_ms)
        verdict.failures += waits
        print(verdict.report())  # noqa: T201 -- the seed and schedule, pass or fail
        return verdict


async def profiles_converge(settings: Settings, events: list[Any]) -> tuple[int, list[str]]:
    """(profiles compared, the differences left) against tests/oracle/profiles.py, once
    they agree or PROFILES_LIMIT_S has passed: the verdict reports what is left."""
    client = connect(settings.redis)
    shops = ShopConfigs(shop_configs_folder(settings.profiles))
    reader = ProfileReader(client, Keys(settings.redis.key_prefix), shops)
    try:
        return await eventually_async(
            lambda: mismatches(reader, events), PROFILES_LIMIT_S,
            "every profile as the reference has it", until=lambda seen: not seen[1], every_s=2,
        )  # fmt: skip
    except WaitError as never:
        return cast("tuple[int, list[str]]", never.seen)  # what mismatches returned last
    finally:
        await client.aclose()
