"""The journey step machine (rules/journey_machine.py) against the plain reference
(tests/oracle/journeys.py) on seeded histories of the pack journeys, and on the cases
the pack does not reach: a time of day in two time zones, a split, keyed instances."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from handlers.triggers.samples import rule_samples
from rules.activation import activation
from rules.folders import PACKAGED_JOURNEYS
from rules.journey_entry import Entries, entry_key, may_enter
from rules.journey_loader import CompiledJourney, JourneySet, compile_journey_file, load_journeys
from rules.journey_machine import (
    Customer,
    Exited,
    Held,
    Move,
    Position,
    Sending,
    after_send,
    due_ms,
    enter,
    on_due,
    on_event,
)
from rules.journey_model import SendOutcome
from tests.oracle import journeys as oracle

DAY_MS = 86_400_000
T0 = int(datetime(2026, 3, 1, tzinfo=UTC).timestamp() * 1000)
SHOP = "s1"
SHANGHAI = ZoneInfo("Asia/Shanghai")


@dataclass
class _Run:
    """Drives the machine over a history the way the worker is to: per customer, events in
    order; waits that ended before an event first; sends decided by ``gate``."""

    journeys: JourneySet
    no_consent: frozenset[str]
    sent: list[oracle.Sent] = field(default_factory=list)
    left: list[oracle.Left] = field(default_factory=list)
    positions: dict[str, dict[tuple[str, str], Position]] = field(default_factory=dict)
    entries: dict[tuple[str, str], Entries] = field(default_factory=dict)
    orders: dict[str, int] = field(default_factory=dict)

    def who(self, customer: str) -> Customer:
        profile = {"counters": {"orders": self.orders.get(customer, 0)}}
        return Customer(SHOP, customer, profile, SHANGHAI)

    def take(self, event: oracle.Event) -> None:
        customer, at_ms, kind = event["customer"], event["ms"], event["type"]
        self.fire_before(customer, at_ms)
        if kind == "order.placed":
            self.orders[customer] = self.orders.get(customer, 0) + 1
        view = {"id": event["id"], "type": kind, "data": event.get("data", {})}
        held = self.positions.setdefault(customer, {})
        for journey in self.journeys.awaited.get(kind, ()):
            for slot, position in sorted(held.items(), key=lambda item: item[1].entered_ms):
                if slot[0] != journey.journey.id:
                    continue
                moved = on_event(journey, self.who(customer), position, view, at_ms)
                if isinstance(moved, Position):
                    held[slot] = moved
                elif moved is not None:
                    self.settle(journey, customer, moved)
        for journey in self.journeys.entering.get(kind, ()):
            key = entry_key(journey, activation(view, self.who(customer).profile, at_ms))
            spec = journey.journey
            past = self.entries.get((customer, spec.id), Entries())
            active = [k for (j, k) in held if j == spec.id]
            if key is None or not may_enter(journey, active, past, key, at_ms):
                continue
            self.entries[(customer, spec.id)] = Entries(past.count + 1, at_ms)
            self.settle(journey, customer, enter(journey, self.who(customer), view, key, at_ms))

    def settle(self, journey: CompiledJourney, customer: str, move: Move) -> None:
        held = self.positions.setdefault(customer, {})
        while isinstance(move, Sending):
            position = move.position
            self.sent.append(
                oracle.Sent(customer, position.journey, position.key, position.step,
                            position.visit, move.at_ms, move.send_id)
            )  # fmt: skip
            category = move.send.category or journey.journey.category
            refused = customer in self.no_consent and category == "marketing"
            outcome: SendOutcome = "no_consent" if refused else "sent"
            move = after_send(journey, self.who(customer), move, outcome)
        slot = (move.position.journey, move.position.key)
        if isinstance(move, Held):
            held[slot] = move.position
        else:
            assert isinstance(move, Exited)
            held.pop(slot, None)
            self.left.append(oracle.Left(customer, slot[0], slot[1], move.reason, move.at_ms))

    def fire_before(self, customer: str, at_ms: int) -> None:
        held = self.positions.setdefault(customer, {})
        while True:
            due = [
                (due_ms(self.journeys.by_id[slot[0]], position), slot)
                for slot, position in held.items()
            ]
            soonest = min((entry for entry in due if entry[0] < at_ms), default=None)
            if soonest is None:
                return
            journey = self.journeys.by_id[soonest[1][0]]
            self.settle(journey, customer, on_due(journey, self.who(customer), held[soonest[1]]))


def _history(seed: int, customers: int) -> tuple[list[oracle.Event], frozenset[str]]:
    """Registrations, orders, deliveries, refunds and survey answers over ten days: many
    fall inside a wait, some exactly at its end."""
    rng = random.Random(seed)
    events: list[tuple[int, int, oracle.Event]] = []
    no_consent = set()
    for n in range(customers):
        who = f"c{n}"
        if rng.random() < 0.2:
            no_consent.add(who)
        start = T0 + rng.randrange(0, 3 * DAY_MS, 60_000)
        moments = [start]
        if rng.random() < 0.8:
            events.append((start, len(events), {"customer": who, "type": "customer.registered"}))
        for order in range(rng.choice([0, 0, 1, 1, 2, 3])):
            at = start + rng.choice(
                [rng.randrange(0, 12 * DAY_MS, 60_000), 3 * DAY_MS, 10 * DAY_MS]
            )
            moments.append(at)
            order_id = f"o{n}-{order}"
            events.append((at, len(events), {"customer": who, "type": "order.placed"}))
            delivered = at + rng.randrange(DAY_MS // 2, 4 * DAY_MS, 60_000)
            data = {"order_id": order_id}
            events.append((delivered, len(events),
                           {"customer": who, "type": "order.delivered", "data": data}))  # fmt: skip
            if rng.random() < 0.15:
                refund = delivered + rng.randrange(0, 6 * DAY_MS, 60_000)
                refunded = {"customer": who, "type": "order.refunded", "data": data}
                events.append((refund, len(events), refunded))
            if rng.random() < 0.5:
                answered = delivered + rng.choice(
                    [rng.randrange(0, 9 * DAY_MS, 60_000), 2 * DAY_MS, 7 * DAY_MS]
                )
                score = {"survey_id": "s", "score": rng.randint(1, 5)}
                answer = {"customer": who, "type": "survey.answered", "data": score}
                events.append((answered, len(events), answer))
    ordered = [
        event | {"ms": at, "id": f"ev-{n}"}
        for at, n, event in sorted(events, key=lambda e: (e[0], e[1]))
    ]
    return ordered, frozenset(no_consent)


@pytest.mark.parametrize("seed", [7, 1_234, 98_765])
def test_the_pack_journeys_send_what_the_reference_sends(seed: int) -> None:
    print(f"seed={seed}")  # noqa: T201 -- replayed from it
    events, no_consent = _history(seed, 500)
    run = _Run(load_journeys(PACKAGED_JOURNEYS, rule_samples), no_consent)
    for event in events:
        run.take(event)
    until = events[-1]["ms"] + 60 * DAY_MS
    for customer in list(run.positions):
        run.fire_before(customer, until + 1)
    gate = lambda who, step: (  # noqa: E731 -- the reference's gate, the same rule
        "no_consent" if who in no_consent and step in oracle.MARKETING_STEPS else "sent"
    )
    sent, left = oracle.expected(SHOP, events, gate, until)
    assert sorted(run.sent) == sent
    assert sorted(run.left) == left
    # The history reaches every path: each step sends, customers leave every way.
    assert {s.step for s in sent} == {
        "welcome", "coupon", "thanks", "survey", "call-back", "repurchase",
    }  # fmt: skip
    assert {entry.reason for entry in left} == {
        "finished", "exit_on order.refunded", "ordered within three days, no coupon needed",
        "no consent for the coupon", "no first order within a week of the coupon",
    }  # fmt: skip
    assert len({s.id for s in sent}) == len(sent)


def _compiled(tmp_path: Path, text: str) -> CompiledJourney:
    path = tmp_path / "j.yaml"
    path.write_text(text, encoding="utf-8")
    compiled, problems = compile_journey_file(path, rule_samples)
    assert problems == [], problems
    assert compiled is not None
    return compiled


@pytest.mark.parametrize(
    ("zone", "registered", "fires"),
    [
        # 09:00 local on 1 March: the same day at 10:00 local.
        ("Asia/Shanghai", "2026-03-01T01:00:00+00:00", "2026-03-01T02:00:00+00:00"),
        ("America/Los_Angeles", "2026-03-01T17:00:00+00:00", "2026-03-01T18:00:00+00:00"),
        # 10:00 local exactly: the next day's 10:00; and across the spring change in LA.
        ("Asia/Shanghai", "2026-03-01T02:00:00+00:00", "2026-03-02T02:00:00+00:00"),
        ("America/Los_Angeles", "2026-03-07T19:00:00+00:00", "2026-03-08T17:00:00+00:00"),
    ],
)
def test_a_wait_until_a_time_of_day_ends_then_in_the_customers_zone(
    tmp_path: Path, zone: str, registered: str, fires: str
) -> None:
    journey = _compiled(
        tmp_path,
        "id: morning\nversion: 1\ndescription: d\nentry: {event: customer.registered}\n"
        "steps:\n  - {id: morning, wait: {until: '10:00'}}\n"
        "  - {id: hello, send: {channels: [sms], template: hello}}\n",
    )
    at_ms = int(datetime.fromisoformat(registered).timestamp() * 1000)
    who = Customer(SHOP, "c1", {}, ZoneInfo(zone))
    entry = {"id": "ev-1", "type": "customer.registered", "data": {}}
    moved = enter(journey, who, entry, "", at_ms)
    assert isinstance(moved, Held)
    assert moved.position.until_ms == int(datetime.fromisoformat(fires).timestamp() * 1000)
    sending = on_due(journey, who, moved.position)
    assert isinstance(sending, Sending)
    assert sending.at_ms == moved.position.until_ms


def test_a_split_sends_a_customer_the_same_way_each_time_and_holds_some_out(
    tmp_path: Path,
) -> None:
    journey = _compiled(
        tmp_path,
        "id: split\nversion: 1\ndescription: d\nentry: {event: customer.registered}\n"
        "steps:\n  - id: pick\n"
        "    split: {paths: [{weight: 80, go: hello}, {weight: 20, holdout: true}]}\n"
        "  - {id: hello, send: {channels: [sms], template: hello}}\n",
    )
    entry: Mapping[str, Any] = {"id": "ev-1", "type": "customer.registered", "data": {}}
    control = 0
    for n in range(2000):
        who = Customer(SHOP, f"c{n}", {}, SHANGHAI)
        first = enter(journey, who, entry, "", T0)
        again = enter(journey, who, entry, "", T0 + DAY_MS)
        assert type(first) is type(again)
        if isinstance(first, Exited):
            assert first.control
            control += 1
    assert 300 < control < 500  # 20% of 2000, give or take


def test_keyed_instances_stop_at_the_most_allowed_and_exit_each_by_its_own_key(
    tmp_path: Path,
) -> None:
    journey = _compiled(
        tmp_path,
        "id: care\nversion: 1\ndescription: d\n"
        "entry: {event: order.delivered, reentry: keyed, key: event.data.order_id,"
        " max_instances: 2}\n"
        "exit_on: [{event: order.refunded}]\n"
        "steps:\n  - {id: rest, wait: 2d}\n",
    )
    who = Customer(SHOP, "c1", {}, SHANGHAI)
    active: list[str] = []
    for order in ("o1", "o1", "o2", "o3"):
        view = {"type": "order.delivered", "data": {"order_id": order}}
        key = entry_key(journey, activation(view, {}, T0))
        assert key == order
        if may_enter(journey, active, Entries(len(active), T0), key, T0):
            active.append(key)
    assert active == ["o1", "o2"]
    held = enter(journey, who, {"id": "ev-1", "data": {"order_id": "o1"}}, "o1", T0)
    assert isinstance(held, Held)
    other = {"type": "order.refunded", "data": {"order_id": "o2"}}
    assert on_event(journey, who, held.position, other, T0 + 1) is None
    own = {"type": "order.refunded", "data": {"order_id": "o1"}}
    out = on_event(journey, who, held.position, own, T0 + 2)
    assert isinstance(out, Exited)
    assert out.reason == "exit_on order.refunded"


def test_an_order_in_the_middle_of_the_wait_means_no_coupon(tmp_path: Path) -> None:
    journeys = load_journeys(PACKAGED_JOURNEYS, rule_samples)
    run = _Run(journeys, frozenset())
    registered = {"id": "ev-1", "customer": "c1", "type": "customer.registered", "ms": T0}
    ordered = {"id": "ev-2", "customer": "c1", "type": "order.placed", "ms": T0 + DAY_MS}
    for event in (registered, ordered):
        run.take(event)
    run.fire_before("c1", T0 + 30 * DAY_MS)
    assert [s.step for s in run.sent] == ["welcome"]
    reason = "ordered within three days, no coupon needed"
    assert run.left == [oracle.Left("c1", "new-member-onboarding", "", reason, T0 + DAY_MS)]


_BRANCHING = (
    "id: by-region\nversion: 1\ndescription: d\nentry: {event: customer.registered}\n"
    "steps:\n  - {id: rest, wait: 1d}\n"
    "  - id: where\n"
    "    branch:\n"
    "      cases: [{if: \"event.data.region == 'north'\", go: north}]\n"
    "      else: south\n"
    "  - {id: north, send: {channels: [sms], template: north}, next: done}\n"
    "  - {id: south, send: {channels: [sms], template: south}}\n"
    "  - {id: done, exit: finished}\n"
)


@pytest.mark.parametrize(("region", "step"), [("north", "north"), ("south", "south")])
def test_an_instance_keeps_of_its_entry_what_its_branches_read_and_branches_on_it(
    tmp_path: Path, region: str, step: str
) -> None:
    journey = _compiled(tmp_path, _BRANCHING)
    who = Customer(SHOP, "c1", {}, SHANGHAI)
    entry = {
        "id": "ev-1", "type": "customer.registered", "shop": SHOP, "subject": "c1",
        "data": {"region": region, "city": "x" * 500, "consents": {"sms": True}},
    }  # fmt: skip
    held = enter(journey, who, entry, "", T0)
    assert isinstance(held, Held)
    assert held.position.entry == {"data": {"region": region}}
    assert held.position.instance == "ev-1"
    sending = on_due(journey, who, held.position)
    assert isinstance(sending, Sending)
    assert sending.position.step == step


@pytest.mark.parametrize(
    ("branches", "kept"),
    [
        ("", {}),  # no branch: nothing of the entry is read after it
        ("event.data.size() > 1", {"data": {"region": "north", "city": "c"}}),
        ("event.size() > 1", None),  # the event whole: kept whole
    ],
)
def test_what_an_instance_keeps_of_its_entry_follows_what_the_branches_read(
    tmp_path: Path, branches: str, kept: dict[str, Any] | None
) -> None:
    steps = "steps:\n  - {id: rest, wait: 1d}\n"
    if branches:
        steps += f'  - id: b\n    branch: {{cases: [{{if: "{branches}", go: hi}}]}}\n'
    steps += "  - {id: hi, send: {channels: [sms], template: hi}}\n"
    journey = _compiled(
        tmp_path,
        "id: keep\nversion: 1\ndescription: d\nentry: {event: customer.registered}\n" + steps,
    )
    entry = {"id": "ev-1", "type": "customer.registered", "data": {"region": "north", "city": "c"}}
    held = enter(journey, Customer(SHOP, "c1", {}, SHANGHAI), entry, "", T0)
    assert isinstance(held, Held)
    assert held.position.entry == (entry if kept is None else kept)
