"""The pack journeys through the engine (profiles, the partition's walk, the journey
Function) on a real Redis, against the plain reference (tests/oracle/journeys.py): a
seeded backlog of days of event time for 500 customers, read batch by batch."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from crmstream.settings import Settings
from handlers.functions.timers import PutOff
from handlers.functions.triggers import JOURNEY_ENTERED
from handlers.journeys.stats import read_journey_stats
from handlers.pipeline import ProfilesAndTriggers
from handlers.triggers.decisions import DecisionReader
from rules.lift import CONVERTED, CONVERTED_HOLDOUT
from schemas.decode import Decoder
from schemas.events import Envelope
from schemas.times import epoch_ms
from tests.journey_history import CONSENTS, DAY_MS, LINE, cloud_event, gate_of, history
from tests.oracle import journeys as oracle
from tests.support import text

T0 = int(datetime(2026, 3, 1, 4, tzinfo=UTC).timestamp() * 1000)
SHOP = "s1"
DECODER = Decoder()
CONVERSIONS = {CONVERTED, CONVERTED_HOLDOUT}  # counted beside a step's sends, not sends


def envelope(event: oracle.Event) -> Envelope:
    return DECODER.require(orjson.dumps(cloud_event(event, SHOP)), epoch_ms(datetime.now(UTC)))


@pytest.fixture
def journey_settings(settings: Settings, tmp_path: Path) -> Settings:
    rules, shops, segments = tmp_path / "rules", tmp_path / "shops", tmp_path / "segments"
    for folder in (rules, shops, segments):
        folder.mkdir()
    (shops / "default.yaml").write_text(
        "journeys: [new-member-onboarding, post-purchase-care]\n", encoding="utf-8"
    )
    triggers = settings.triggers.model_copy(
        update={"rules_dir": rules, "daily_cap": 1000, "timer_disorder_s": 0.0,
                "timer_idle_s": 3600.0}
    )  # fmt: skip
    return settings.model_copy(
        update={
            "triggers": triggers,
            "profiles": settings.profiles.model_copy(update={"shop_config_dir": shops}),
            "segments": settings.segments.model_copy(update={"segments_dir": segments}),
        }
    )


@pytest.fixture
async def sink(journey_settings: Settings) -> AsyncIterator[ProfilesAndTriggers]:
    sink = ProfilesAndTriggers.from_settings(journey_settings)
    at = datetime.fromtimestamp(T0 / 1000, UTC)
    sink.observe_event_time({("test", 0): at}, behind={}, written={}, heard={})
    sink.writer.wall_ms = lambda: sink.time.read_up_to_ms(0)
    yield sink
    await sink.close()


async def run_through(
    sink: ProfilesAndTriggers,
    events: list[oracle.Event],
    until: int,
    *,
    again: int = 0,
    size: int = 40,
) -> None:
    """The events in batches of ``size``, event time following them, each walk in its
    turn; each batch also read ``again`` batches later (redelivered, as after a crash)."""
    batches = [events[start : start + size] for start in range(0, len(events), size)]
    for n, batch in enumerate(batches):
        await sink.handle([envelope(event) for event in batch])
        if again and n >= again:
            await sink.handle([envelope(event) for event in batches[n - again]])
        newest = datetime.fromtimestamp(batch[-1]["ms"] / 1000, UTC)
        sink.observe_event_time({("test", 0): newest}, behind={}, written={}, heard={})
        await sink.fire_due()
    end = datetime.fromtimestamp(until / 1000, UTC)
    sink.observe_event_time({("test", 0): end}, behind={}, written={}, heard={})
    while await sink.fire_due():
        pass


async def decided_sends(
    sink: ProfilesAndTriggers, events: list[oracle.Event]
) -> set[tuple[str, str]]:
    """(customer, trigger id) of every send decided for the history's customers."""
    reader = DecisionReader(sink.client, sink.keys)
    decided: set[tuple[str, str]] = set()
    for who in {event["customer"] for event in events}:
        decided |= {(who, entry["trigger_id"]) for entry in await reader.fired(SHOP, who)}
    return decided


@pytest.mark.parametrize(
    ("seed", "again", "size"), [(11, 0, 40), (2_026, 0, 40), (7, 3, 40), (5, 0, 600)]
)
async def test_the_engine_sends_what_the_reference_sends(
    sink: ProfilesAndTriggers, seed: int, again: int, size: int
) -> None:
    """``again``: every batch is read a second time that many batches later; ``size``:
    events a batch (600: days of event time in one walk, as a backlog is read)."""
    print(f"seed={seed}")  # noqa: T201 -- replayed from it
    events, unreachable = history(seed, 500, T0)
    until = events[-1]["ms"] + 40 * DAY_MS
    await run_through(sink, events, until, again=again, size=size)

    gate = gate_of(unreachable)
    sent, left = oracle.expected(SHOP, events, gate, until)
    decided = await decided_sends(sink, events)
    expected = {(s.customer, s.id) for s in sent}
    assert decided == expected, (len(decided - expected), len(expected - decided))
    # The sends a customer could not be marketed to were decided, and suppressed.
    refused = {(s.customer, s.id) for s in sent if gate(s.customer, s.step) == "no_consent"}
    assert refused
    # Everyone has left by the end, each for the reason the reference gives; each step
    # sent as often as the reference's.
    stats = {entry.journey: entry for entry in await read_journey_stats(sink.client, sink.keys)}
    assert set(stats) == {oracle.ONBOARDING, oracle.CARE}
    for journey, counted in stats.items():
        assert counted.exited == Counter(e.reason for e in left if e.journey == journey)
        assert counted.entered == sum(1 for e in left if e.journey == journey)
        assert +counted.at == Counter()  # nobody is held anywhere any more
        by_step = {
            step: sum(n for outcome, n in outcomes.items() if outcome not in CONVERSIONS)
            for step, outcomes in counted.sends.items()
        }
        assert by_step == Counter(s.step for s in sent if s.journey == journey)
    # Each instance's goal: entered, and reached by an order within its window, counted
    # once per instance however often its batch was read.
    reached = oracle.goals_reached(SHOP, events, gate, until)
    for journey, counted in stats.items():
        assert counted.goal[JOURNEY_ENTERED] == counted.entered
        assert counted.goal[CONVERTED] == reached[journey], journey


class WalkDiedError(Exception):
    """The worker's death, between a walk's moves and the arming of their waits."""


@pytest.mark.parametrize("dies_at_walk", [1, 2, 5])
async def test_a_walk_that_died_before_arming_its_waits_arms_them_when_walked_again(
    sink: ProfilesAndTriggers, dies_at_walk: int
) -> None:
    """The moves of a walk are written before the waits they end in are armed (the
    instance lives in the customer's slot, the wait in the partition's). A worker that dies
    in between leaves the walk's entries taken: the next walk takes them again, and must
    arm every wait that the dead one moved an instance to, though walking the entries
    again moves nothing (the instance entered already, the event is not awaited)."""
    events, unreachable = history(31, 300, T0)
    until = events[-1]["ms"] + 40 * DAY_MS
    arm = sink.journeys._arm
    walks = 0

    async def arm_or_die(entries: Mapping[int, Sequence[PutOff]]) -> None:
        nonlocal walks
        walks += 1
        if walks == dies_at_walk:
            raise WalkDiedError
        await arm(entries)

    sink.journeys._arm = arm_or_die
    died = False
    original = sink.fire_due

    async def fire_due() -> Counter[str]:
        nonlocal died
        try:
            return await original()
        except WalkDiedError:
            died = True
            return Counter({"died": 1})

    sink.fire_due = fire_due  # type: ignore[method-assign]  # the death caught, as a restart
    await run_through(sink, events, until, size=600)
    assert died

    sent, _left = oracle.expected(SHOP, events, gate_of(unreachable), until)
    decided = await decided_sends(sink, events)
    expected = {(s.customer, s.id) for s in sent}
    assert decided == expected, (len(decided - expected), len(expected - decided))


async def test_an_erasure_takes_the_customers_journeys_and_their_waits(
    sink: ProfilesAndTriggers,
) -> None:
    def at(days: float) -> int:
        return T0 + int(days * DAY_MS)

    events: list[oracle.Event] = [
        {"id": "ev-1", "customer": "gone", "type": "customer.registered", "ms": at(0),
         "data": {"consents": CONSENTS}},
        {"id": "ev-2", "customer": "gone", "type": "order.placed", "ms": at(0.5),
         "data": {"order_id": "o1", "items": [LINE], "total": "10.00"}},
        {"id": "ev-3", "customer": "gone", "type": "order.delivered", "ms": at(1),
         "data": {"order_id": "o1"}},
        {"id": "ev-4", "customer": "stays", "type": "customer.registered", "ms": at(1),
         "data": {"consents": CONSENTS}},
    ]  # fmt: skip
    keys, client = sink.keys, sink.client
    await run_through(sink, events, at(1.5))
    held = await sink.journeys.store.read(SHOP, "gone")
    assert set(held.instances) == {("post-purchase-care", "o1")}  # onboarding left: ordered
    now_at = {e.journey: +e.at for e in await read_journey_stats(client, keys, SHOP)}
    assert now_at == {oracle.CARE: {"unpack": 1}, oracle.ONBOARDING: {"settle-in": 1}}
    timers = keys.partition(0).timers

    async def named(who: str) -> list[str]:
        found: list[bytes] = await client.zrange(timers, 0, -1)  # type: ignore[assignment]  # members, no scores asked
        members = [text(member) for member in found]
        return [member for member in members if f"\x1f{who}\x1f" in member]

    assert await named("gone")
    erasure = {"id": "ev-5", "customer": "gone", "type": "customer.erasure_requested",
               "ms": at(2), "data": {}}  # fmt: skip
    await run_through(sink, [erasure], at(2.5))
    assert await client.exists(keys.journeys(SHOP, "gone")) == 0
    assert await named("gone") == []
    assert await named("stays")  # the other customer's wait is where it was
    assert (await sink.journeys.store.read(SHOP, "stays")).instances


SERIES = """
id: welcome-series
version: {version}
description: a hello, two days, a follow-up
on_new_version: {on_new}
entry: {{event: customer.registered}}
steps:
  - {{id: hello, send: {{channels: [sms], template: hello-v{version}}}}}
  - {{id: pause, wait: 2d}}
  - {{id: follow, send: {{channels: [sms], template: follow-v{version}}}}}
"""


@pytest.mark.parametrize("on_new", ["finish", "exit"])
async def test_a_new_version_leaves_those_in_the_old_one_to_finish_it_or_leave(
    journey_settings: Settings, tmp_path: Path, on_new: str
) -> None:
    folder = tmp_path / "journeys"
    folder.mkdir()
    (folder / "series.yaml").write_text(SERIES.format(version=1, on_new=on_new))
    shops = tmp_path / "series-shops"
    shops.mkdir()
    (shops / "default.yaml").write_text("journeys: [welcome-series]\n")
    settings = journey_settings.model_copy(
        update={
            "triggers": journey_settings.triggers.model_copy(update={"journeys_dir": folder}),
            "profiles": journey_settings.profiles.model_copy(update={"shop_config_dir": shops}),
        }
    )
    sink = ProfilesAndTriggers.from_settings(settings)
    try:
        sink.observe_event_time(
            {("test", 0): datetime.fromtimestamp(T0 / 1000, UTC)}, behind={}, written={}, heard={}
        )
        sink.writer.wall_ms = lambda: sink.time.read_up_to_ms(0)

        def registered(who: str, minutes: int) -> oracle.Event:
            return {"id": f"r-{who}-{minutes}", "customer": who, "type": "customer.registered",
                    "ms": T0 + minutes * 60_000, "data": {"consents": CONSENTS}}  # fmt: skip

        first = [f"old{n}" for n in range(100)]
        await run_through(sink, [registered(who, n) for n, who in enumerate(first)], T0 + DAY_MS)
        # Version 2 is published while the first hundred wait in version 1.
        (folder / "series.yaml").write_text(SERIES.format(version=2, on_new=on_new))
        sink.reload_rules()
        # With exit, those in version 1 leave as it is published, before any event of
        # theirs or the end of their wait: at the partition's time then.
        await sink.fire_due()
        await sink.fire_due()
        stats = {
            (e.journey, e.version): e for e in await read_journey_stats(sink.client, sink.keys)
        }
        published = stats[("welcome-series", 1)]
        if on_new == "exit":
            assert published.exited == {"new version": 100}
            assert published.now_in == 0
            left = await DecisionReader(sink.client, sink.keys).log(SHOP, "old0")
            assert [entry["at"] for entry in left if entry["outcome"] == "journey"] == [T0 + DAY_MS]
        else:
            assert published.now_in == 100
        later = [f"new{n}" for n in range(50)]
        again = [registered(who, 1500 + n) for n, who in enumerate(first)]  # registered again
        fresh = [registered(who, 1600 + n) for n, who in enumerate(later)]
        await run_through(sink, again + fresh, T0 + 6 * DAY_MS)

        sent: Counter[tuple[str, str]] = Counter()
        for base in sink.keys.trigger_shards():
            for _id, fields in await sink.client.xrange(sink.keys.outbox(base)) or []:
                assert fields is not None
                trigger = orjson.loads(fields[b"event"])
                sent[(trigger["subject"][:3], trigger["data"]["template"])] += 1
        # Finishing, the first hundred are still inside when they register again: not
        # entered again. Taken out at publication, they are out by then, and their new
        # registration enters them into version 2 (re-entry after_exit), once.
        finish = on_new == "finish"
        again_v2 = 0 if finish else 100
        assert sent == +Counter({
            ("old", "hello-v1"): 100, ("old", "follow-v1"): 100 if finish else 0,
            ("old", "hello-v2"): again_v2, ("old", "follow-v2"): again_v2,
            ("new", "hello-v2"): 50, ("new", "follow-v2"): 50,
        })  # fmt: skip
        stats = {
            (e.journey, e.version): e for e in await read_journey_stats(sink.client, sink.keys)
        }
        assert stats[("welcome-series", 1)].entered == 100  # nobody entered twice
        assert stats[("welcome-series", 2)].entered == 50 + again_v2
        reason = "finished" if on_new == "finish" else "new version"
        assert stats[("welcome-series", 1)].exited == {reason: 100}
    finally:
        await sink.close()


async def test_a_bad_journey_file_on_reload_keeps_the_journeys_loaded(
    journey_settings: Settings, tmp_path: Path
) -> None:
    folder = tmp_path / "journeys"
    folder.mkdir()
    (folder / "series.yaml").write_text(SERIES.format(version=1, on_new="finish"))
    triggers = journey_settings.triggers.model_copy(update={"journeys_dir": folder})
    sink = ProfilesAndTriggers.from_settings(
        journey_settings.model_copy(update={"triggers": triggers})
    )
    try:
        (folder / "loop.yaml").write_text(
            (
                Path(__file__).parents[1] / "data" / "broken_journeys" / "loop-without-wait.yaml"
            ).read_text()
        )
        sink.reload_rules()
        assert list(sink.journeys.journeys.by_id) == ["welcome-series"]
        (folder / "loop.yaml").unlink()
        (folder / "series.yaml").write_text(SERIES.format(version=2, on_new="finish"))
        sink.reload_rules()
        assert sink.journeys.journeys.by_id["welcome-series"].journey.version == 2
    finally:
        await sink.close()
