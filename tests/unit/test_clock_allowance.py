"""Event time on topics the broker stamps with append times (handlers/timing/allowance.py):
decisions wait as long as writes are measured to take, not a fixed worst case."""

from __future__ import annotations

import os
import random

import pytest

from handlers.keys import Keys
from handlers.timing import Allowances, PartitionTiming
from handlers.timing.allowance import WriteLateness
from tests.unit.fetching import FetchingConsumer
from tests.unit.test_clock import HOUR, NOW, NothingDue, Wall

TOPICS = ("browse", "cart", "order", "review", "customer")
APPENDED = frozenset(TOPICS)
CEILING_MS = 2_000
FLOOR_MS = 50


def measured(wall: Wall, *, window_s: float = 10, disorder_ms: int = 0) -> PartitionTiming:
    allowances = Allowances(
        disorder_ms=disorder_ms, idle_ms=10_000, write_delay_ms=CEILING_MS, away_ms=1_500,
        floor_ms=FLOOR_MS, window_ms=int(window_s * 1000),
    )  # fmt: skip
    return PartitionTiming(NothingDue(), Keys("t"), allowances, worker="w", limit=10, wall=wall)


def heard_all(wall: Wall) -> dict[tuple[str, int], int]:
    return {(topic, 0): wall.ms for topic in TOPICS}


def test_the_sliding_maximum_rises_at_once_and_falls_after_its_window() -> None:
    lateness = WriteLateness(floor_ms=50, ceiling_ms=2_000, window_ms=10_000)
    assert lateness.allowance_ms(0) == 50
    lateness.add(5, 0)
    assert lateness.allowance_ms(0) == 50  # the floor
    lateness.add(1_000, 1_000)
    lateness.add(300, 2_000)
    assert lateness.allowance_ms(2_000) == 1_000
    assert lateness.allowance_ms(11_000) == 1_000
    assert lateness.allowance_ms(11_001) == 300  # the late write left the window
    assert lateness.allowance_ms(12_001) == 50
    lateness.add(HOUR, 12_001)  # a replayed event: late, not a measure of writes
    assert lateness.allowance_ms(12_001) == 50


def test_live_traffic_on_stamped_topics_waits_only_the_measured_allowance() -> None:
    wall = Wall()
    time = measured(wall)
    cart = ("cart", 0)
    time.observe(
        {cart: wall.ms - 5}, {}, written={cart: wall.ms}, heard=heard_all(wall),
        late={cart: 5}, appended=APPENDED,
    )  # fmt: skip
    assert time.allowance_ms(0) == FLOOR_MS
    wall.now += 0.1
    time.observe({}, {}, heard=heard_all(wall), appended=APPENDED)
    # The broker's answer less the margin, less the last event's own lateness, less the
    # allowance: 105 ms behind the clock, where a fixed write delay kept it 2 s behind.
    assert time.due_ms(0) == wall.ms - FLOOR_MS - 5 - FLOOR_MS
    assert time.read_up_to_ms(0) == time.due_ms(0)


def test_a_producer_that_starts_lagging_raises_the_allowance_with_its_first_late_write() -> None:
    wall = Wall()
    time = measured(wall, window_s=10)
    cart, order = ("cart", 0), ("order", 0)
    for _ in range(20):  # both topics on time
        wall.now += 0.1
        time.observe(
            {cart: wall.ms - 3, order: wall.ms - 4}, {},
            written={cart: wall.ms, order: wall.ms}, heard=heard_all(wall),
            late={cart: 3, order: 4}, appended=APPENDED,
        )  # fmt: skip
    assert time.allowance_ms(0) == FLOOR_MS
    # Orders now reach the broker a second after they happened; carts race ahead.
    wall.now += 1
    time.observe(
        {cart: wall.ms - 3, order: wall.ms - 1_000}, {},
        written={cart: wall.ms, order: wall.ms}, heard=heard_all(wall),
        late={cart: 3, order: 1_000}, appended=APPENDED,
    )  # fmt: skip
    assert time.allowance_ms(0) == 1_000
    assert time.due_ms(0) <= wall.ms - FLOOR_MS - 1_000
    # Ten seconds on time again, and it falls back to the floor.
    for _ in range(101):
        wall.now += 0.1
        time.observe(
            {cart: wall.ms - 3}, {}, written={cart: wall.ms}, heard=heard_all(wall),
            late={cart: 3}, appended=APPENDED,
        )  # fmt: skip
    assert time.allowance_ms(0) == FLOOR_MS


def test_records_stamped_by_their_producer_fall_back_to_the_write_delay() -> None:
    """Records written before the topic was set to append times carry the producer's
    timestamp: for them, the fixed delay a write may take holds."""
    wall = Wall()
    time = measured(wall)
    cart = ("cart", 0)
    time.observe(
        {cart: wall.ms - 5}, {}, written={cart: wall.ms}, heard=heard_all(wall),
        appended=APPENDED,  # no `late` for cart: a record of this poll was not stamped
    )  # fmt: skip
    assert time.allowance_ms(0) == CEILING_MS
    wall.now += 0.1
    time.observe({}, {}, heard=heard_all(wall), appended=APPENDED)
    assert time.due_ms(0) <= wall.ms - CEILING_MS


def test_a_replay_of_old_events_is_lined_up_with_the_fixed_write_delay() -> None:
    """A burst of old events reaches the broker in batches per topic, and a batch appended
    a moment after another may hold what came first: hours of event time. So replayed
    records line their topics up with the fixed delay, and keep the disorder allowance."""
    wall = Wall()
    time = measured(wall, disorder_ms=250)
    cart = ("cart", 0)
    time.observe(
        {cart: NOW - HOUR}, {}, written={cart: wall.ms}, heard=heard_all(wall),
        late={cart: HOUR}, appended=APPENDED,
    )  # fmt: skip
    assert time.allowance_ms(0) == CEILING_MS  # a replayed event measures nothing
    for _ in range(19):
        wall.now += 0.1
        time.observe({}, {}, heard=heard_all(wall), appended=APPENDED)
    assert time.due_ms(0) < NOW - HOUR  # the other topics' batches may still hold older ones
    wall.now += 0.2
    time.observe({}, {}, heard=heard_all(wall), appended=APPENDED)
    assert time.due_ms(0) == NOW - HOUR - 250


REPLAY = -1  # events of hours ago, sent in a burst that reaches the broker in batches


@pytest.mark.parametrize("most_late_ms", [0, 40, 300, 1_500, REPLAY])
@pytest.mark.parametrize("run", range(5))
def test_stamped_time_never_passes_an_event_not_yet_read(most_late_ms: int, run: int) -> None:
    """Storefronts write live events on five topics, each reaching the broker at most
    ``most_late_ms`` after it happened (the first one that late, so that it is measured);
    or a replay sends events of hours ago, each reaching the broker up to 250 ms out of
    the order they were sent in (batches per topic). The broker stamps each with its
    append time; a consumer reads the topics at their own pace. At no poll may the time a
    deadline is due by pass an event not yet read."""
    seed = int(os.environ.get("CLOCK_SEED", 9_000 + run))
    print(f"seed={seed} most late={most_late_ms}ms")  # noqa: T201 -- replayed from it
    rng = random.Random(seed)
    wall = Wall()
    time = measured(wall, window_s=3_600)
    arrivals: list[tuple[int, str, int]] = []  # (appended, topic, event time)
    happened = wall.ms
    for n in range(600):
        happened += rng.choice((0, 1, 5, 20, 200, 2_000, 6_000))
        if most_late_ms == REPLAY:
            arrivals.append((happened + rng.randint(0, 250), rng.choice(TOPICS), happened - HOUR))
            continue
        lateness = most_late_ms if n == 0 else rng.randint(0, most_late_ms)
        arrivals.append((happened + lateness, rng.choice(TOPICS), happened))
    # The broker stamps each record with its append time, which only grows along a topic.
    last_appended = dict.fromkeys(TOPICS, 0)
    stamped = []
    for reached, topic, event in sorted(arrivals):
        appended = last_appended[topic] = max(reached, last_appended[topic])
        stamped.append((appended, topic, appended, event))
    consumer = FetchingConsumer(TOPICS, stamped)
    while not consumer.done:
        wall.now += rng.choice((0.001, 0.01, 0.05, 0.1))
        poll = consumer.poll(rng, wall.ms)
        time.observe(
            poll.newest, poll.lagging, written=poll.written, heard=poll.heard, late=poll.late,
            appended=APPENDED,
        )  # fmt: skip
        pending = consumer.pending()
        if pending and (time.allowance_ms(0) or 0) >= most_late_ms:
            assert time.due_ms(0) <= min(pending), (seed, wall.ms)
            assert time.read_up_to_ms(0) <= min(pending), (seed, wall.ms)


def test_a_poll_on_an_owned_live_partition_wakes_the_walk() -> None:
    wall = Wall()
    time = measured(wall)
    time.assign([0, 2])
    time.observe({}, {}, heard={("cart", 1): wall.ms}, appended=APPENDED)
    assert not time.moved.is_set()  # not this worker's partition
    time.observe({}, {("cart", 2): 100_000}, appended=APPENDED)
    assert not time.moved.is_set()  # a backlog: its timers wait for it to be read
    time.observe({}, {}, heard={("cart", 0): wall.ms}, appended=APPENDED)
    assert time.moved.is_set()
