"""Event time per partition (handlers/timing), driven as the consumer drives it: the topics
of a partition lined up by when their records were written, and moved on by the broker's
answers, never by time passing alone. Redis is not asked here: the walks' calls go to a
stand-in that finds nothing due."""

from __future__ import annotations

import os
import random
from collections import Counter
from collections.abc import Sequence
from typing import Any

import pytest

from handlers.functions.contract import Call
from handlers.functions.timers import Count, Due, DueReply
from handlers.keys import Keys
from handlers.timing import Allowances, PartitionTiming
from tests.unit.fetching import FetchingConsumer

WALL_S = 1_000_000.0  # the wall clock's start, in seconds
NOW = int(WALL_S * 1000)
HOUR = 3_600_000


class Wall:
    def __init__(self) -> None:
        self.now = WALL_S

    def __call__(self) -> float:
        return self.now

    @property
    def ms(self) -> int:
        return int(self.now * 1000)


class NothingDue:
    """Answers a walk that nothing is due and nothing waits; a hand-over, that it let go."""

    def __init__(self) -> None:
        self.calls: list[Call] = []

    async def run(self, calls: Sequence[Call]) -> list[Any]:
        self.calls += calls
        return [
            DueReply([], cut_short=False, state_lost=False, waiting=0, cancelled=0)
            if isinstance(call, Due)
            else Count(1)
            for call in calls
        ]


def clock(wall: Wall, *, idle_s: float = 10, write_delay_ms: int = 250) -> PartitionTiming:
    allowances = Allowances(
        disorder_ms=0, idle_ms=int(idle_s * 1000), write_delay_ms=write_delay_ms, away_ms=1_500
    )
    return PartitionTiming(NothingDue(), Keys("t"), allowances, worker="w", limit=10, wall=wall)


async def nothing_to_decide(_due: object) -> Counter[str]:
    return Counter()


def polls(time: PartitionTiming, wall: Wall, seconds: float, *tps: tuple[str, int]) -> None:
    """The consumer polling for ``seconds``, every 100 ms, the broker answering each time
    that ``tps`` have nothing more."""
    for _ in range(round(seconds * 10)):
        wall.now = round(wall.now + 0.1, 1)
        time.observe({}, {}, heard=dict.fromkeys(tps, wall.ms))


def test_nothing_is_due_before_the_consumer_has_said_where_a_partition_stands() -> None:
    wall = Wall()
    time = clock(wall)
    time.assign([0])
    assert time.behind(0)
    assert time.due_ms(0) == 0
    time.observe({}, {("a", 0): None, ("b", 0): None})  # not fetched from yet
    assert time.due_ms(0) == 0


def test_a_burst_read_on_one_topic_counts_once_the_others_are_heard_past_its_writing() -> None:
    """A producer's burst of past events reaches cart before order: the cart adds count
    towards time only once the broker has said order holds nothing written before them."""
    wall = Wall()
    time = clock(wall)
    written = wall.ms
    time.observe(
        {("cart", 0): NOW - HOUR},
        {},
        written={("cart", 0): written},
        heard={("cart", 0): wall.ms, ("order", 0): wall.ms},
    )
    assert time.due_ms(0) == 0  # order was heard from too soon after cart was written
    wall.now += 0.2
    time.observe({}, {}, heard={("cart", 0): wall.ms, ("order", 0): wall.ms})
    assert time.due_ms(0) == 0
    wall.now += 0.1  # 300 ms after the writing, beyond the 250 ms a record may take
    time.observe({}, {}, heard={("cart", 0): wall.ms, ("order", 0): wall.ms})
    assert time.due_ms(0) == NOW - HOUR


def test_a_topic_with_records_to_read_holds_time_at_what_was_written_before_it() -> None:
    wall = Wall()
    time = clock(wall)
    wall.now += 1
    time.observe(
        {("cart", 0): 5_000, ("order", 0): 4_000},
        {("order", 0): 700},
        written={("cart", 0): NOW + 200, ("order", 0): NOW + 10},
        heard={("cart", 0): wall.ms},
    )
    # A record written a moment before the newest one read may still land behind it.
    assert time.due_ms(0) == 0
    assert time.defer(0)
    time.observe({("order", 0): 4_200}, {("order", 0): 500}, written={("order", 0): NOW + 300})
    assert time.due_ms(0) == 4_000  # the cart add, written at +200, waits for order to pass it
    time.observe({("order", 0): 4_500}, {}, written={("order", 0): NOW + 600}, heard={})
    time.observe({}, {}, heard={("order", 0): wall.ms})
    assert time.due_ms(0) == 5_000


def test_a_pause_in_a_replay_moves_time_on_by_the_pause_and_its_end_by_the_clock() -> None:
    """Old events (written an hour after they happened): a pause shorter than idle moves
    time on by as long as it lasted, not to now; once every topic has been quiet for
    idle, the replay is over and time is now's, less what a record may take."""
    wall = Wall()
    time = clock(wall, idle_s=10)
    both = {("cart", 0): 0, ("order", 0): 0}
    time.observe(
        {("cart", 0): NOW - HOUR, ("order", 0): NOW - HOUR - 10},
        {},
        written=dict.fromkeys(both, NOW),
        heard={},
    )
    for _ in range(9):
        wall.now += 1
        time.observe({}, {}, heard=dict.fromkeys(both, wall.ms))
        assert time.due_ms(0) == NOW - HOUR
    wall.now += 1
    time.observe({}, {}, heard=dict.fromkeys(both, wall.ms))
    assert time.due_ms(0) == wall.ms - 250


def test_quiet_is_what_the_broker_confirms_not_time_passing() -> None:
    """A worker stalled on Redis, or a broker away (reported as behind, lag unknown),
    never lets the clock take over a replay."""
    wall = Wall()
    time = clock(wall, idle_s=2)
    tp = ("a", 0)
    wall.now += 0.3
    time.observe({tp: NOW - HOUR}, {}, written={tp: NOW}, heard={tp: wall.ms})
    wall.now += 60  # no poll meanwhile
    assert time.due_ms(0) == NOW - HOUR
    time.observe({}, {tp: None})  # the broker's word is stale
    wall.now += 60
    time.observe({}, {tp: None})
    assert time.due_ms(0) == NOW - HOUR
    time.observe({}, {}, heard={tp: wall.ms})  # answering again: quiet starts over
    assert time.due_ms(0) == NOW - HOUR
    polls(time, wall, 1.9, tp)
    assert time.due_ms(0) == NOW - HOUR
    polls(time, wall, 0.1, tp)
    assert time.due_ms(0) == wall.ms - 250


def test_live_traffic_keeps_pace_with_the_clock() -> None:
    wall = Wall()
    time = clock(wall)
    tp = ("a", 0)
    time.observe({tp: NOW - 5}, {}, written={tp: NOW}, heard={tp: NOW})
    wall.now += 1
    time.observe({}, {}, heard={tp: wall.ms})
    assert time.due_ms(0) == wall.ms - 250 - 5  # the clock, less the event's lateness
    assert not time.behind(0)


def test_a_few_fresh_records_behind_is_live_traffic_not_a_backlog() -> None:
    wall = Wall()
    time = clock(wall)
    time.observe({("a", 0): NOW - 100}, {("a", 0): 3}, written={("a", 0): NOW - 90}, heard={})
    assert not time.behind(0)
    time.observe({("b", 0): NOW - HOUR}, {("b", 0): 3}, written={("b", 0): NOW}, heard={})
    assert time.behind(0)  # an hour-old event with more to read: a backlog


def test_a_record_new_to_a_quiet_topic_caught_up_a_moment_ago_is_live_too() -> None:
    """A shop's reviews are sparse: the newest read is minutes old when the next comes."""
    wall = Wall()
    time = clock(wall)
    reviews = ("reviews", 0)
    time.observe({reviews: NOW - 5 * 60_000}, {}, written={reviews: NOW - 5 * 60_000},
                 heard={reviews: wall.ms})  # fmt: skip
    wall.now += 1
    time.observe({}, {reviews: 1})
    assert not time.behind(0)
    wall.now += 11  # no word of it caught up for longer than the live window
    time.observe({}, {reviews: 1})
    assert time.behind(0)


def test_an_empty_partition_moves_on_by_the_clock_once_confirmed_quiet() -> None:
    wall = Wall()
    time = clock(wall, idle_s=2)
    time.assign([3])
    time.observe({}, {}, heard={("a", 3): wall.ms})
    assert not time.behind(3)
    polls(time, wall, 2, ("a", 3))
    assert time.due_ms(3) == wall.ms - 250


async def test_each_partition_keeps_its_own_time_and_a_rewind_starts_it_over() -> None:
    wall = Wall()
    time = clock(wall)
    time.assign([0, 1, 2])
    time.observe(
        {("a", 0): 9_000, ("a", 1): 1_000},
        {("a", 1): 5_000, ("a", 2): None},
        written={("a", 0): 9_000, ("a", 1): 1_000},
        heard={("a", 0): 9_500},
    )
    time.observe({("a", 1): 1_200}, {("a", 1): 4_000}, written={("a", 1): 1_300})
    assert time.due_ms(0) == 9_250  # written as it happened: on with the broker's answer
    assert time.due_ms(1) == 1_000
    assert time.due_ms(2) == 0
    assert time.defer(1)
    assert not time.defer(0)
    await time.revoke([1])
    assert time.partitions == [0, 2]
    time.rewind([0])
    assert time.behind(0)
    assert time.due_ms(0) == 0


async def test_a_partition_settles_only_once_caught_up() -> None:
    wall = Wall()
    time = clock(wall)
    tp = ("a", 0)
    time.observe({tp: NOW - HOUR}, {tp: 10}, written={tp: NOW}, heard={})
    assert time.defer(0)
    await time.catch_up(nothing_to_decide)
    assert time.defer(0)  # still behind: nothing walked
    time.observe({tp: NOW - HOUR + 5}, {}, written={tp: NOW}, heard={tp: NOW})
    assert time.catching_up() == [0]
    await time.catch_up(nothing_to_decide)  # nothing put off waits any more
    assert not time.defer(0)


def test_a_partition_not_owned_always_defers_and_is_not_made_ours_by_asking() -> None:
    time = clock(Wall())
    time.assign([1])
    assert time.defer(0)
    assert time.behind(0)
    assert time.due_ms(0) == 0
    assert time.partitions == [1]


# A storefront writing on five topics, each record reaching the broker within the write
# delay, a consumer reading the topics at their own pace, pauses shorter than idle: at no
# poll may the time a deadline is due by pass an event not yet read.
TOPICS = ("browse", "cart", "order", "review", "customer")
WRITE_DELAY_MS = 250


@pytest.mark.parametrize("lateness_ms", [0, 40, HOUR, 5 * HOUR])
@pytest.mark.parametrize("run", range(5))
def test_time_never_passes_an_event_not_yet_read(lateness_ms: int, run: int) -> None:
    seed = int(os.environ.get("CLOCK_SEED", 7_000 + run))
    print(f"seed={seed} lateness={lateness_ms}ms")  # noqa: T201 -- replayed from it
    rng = random.Random(seed)
    wall = Wall()
    time = clock(wall, idle_s=10, write_delay_ms=WRITE_DELAY_MS)
    disorder_ms = 30  # event times written up to this far out of order (the allowance)
    arrivals: list[tuple[int, str, int, int]] = []  # (at the broker, topic, written, event)
    at = wall.ms
    for _ in range(600):
        at += rng.choice((0, 1, 5, 20, 200, 2_000, 6_000))  # bursts and pauses < idle
        event = at - lateness_ms - rng.randint(0, disorder_ms)
        arrivals.append((at + rng.randint(0, WRITE_DELAY_MS), rng.choice(TOPICS), at, event))
    consumer = FetchingConsumer(TOPICS, arrivals)
    while not consumer.done:
        wall.now += rng.choice((0.001, 0.01, 0.05, 0.1))
        poll = consumer.poll(rng, wall.ms)
        time.observe(poll.newest, poll.lagging, written=poll.written, heard=poll.heard)
        if pending := consumer.pending():
            assert time.due_ms(0) - disorder_ms <= min(pending), (seed, wall.ms)


def test_after_the_broker_was_away_what_was_written_meanwhile_may_still_come() -> None:
    """Storefronts hold what they wrote while the broker was away and send it once it is
    back, late: an order written before the outage, sent after it, must still be read
    before time passes it."""
    wall = Wall()
    time = clock(wall, idle_s=10, write_delay_ms=250)
    cart, order = ("cart", 0), ("order", 0)
    time.observe({}, {}, heard={cart: wall.ms, order: wall.ms})
    written = wall.ms + 100  # a cart add reaches the broker; its order does not
    wall.now += 0.5
    time.observe({cart: NOW - HOUR}, {}, written={cart: written}, heard={cart: wall.ms})
    wall.now += 3
    time.observe({}, {cart: None, order: None})  # the broker's word is stale: away
    wall.now += 8
    polls(time, wall, 5, cart, order)  # back
    assert time.due_ms(0) == 0  # the cart add was written after the broker's last word
    # The order, sent again; then quiet.
    time.observe({order: NOW - HOUR - 5}, {}, written={order: written}, heard={order: wall.ms})
    polls(time, wall, 4.9, cart, order)
    assert time.due_ms(0) == 0  # nothing written since the outage counts for idle after it
    polls(time, wall, 0.2, cart, order)
    assert time.due_ms(0) == NOW - HOUR
    polls(time, wall, 5, cart, order)  # quiet for idle since it came back: over
    assert time.due_ms(0) == wall.ms - 250


def test_a_gap_in_the_brokers_answers_is_an_absence_too() -> None:
    """A worker whose commit waited out the outage polls nothing meanwhile: the gap
    between two answers says the broker was away."""
    wall = Wall()
    time = clock(wall, idle_s=10, write_delay_ms=250)
    cart, order = ("cart", 0), ("order", 0)
    time.observe({}, {}, heard={cart: wall.ms, order: wall.ms})
    written = wall.ms + 100
    wall.now += 8
    time.observe({}, {}, heard={cart: wall.ms, order: wall.ms})
    wall.now += 1
    time.observe(
        {cart: NOW - HOUR}, {}, written={cart: written}, heard={cart: wall.ms, order: wall.ms}
    )
    polls(time, wall, 8.9, cart, order)
    assert time.due_ms(0) == 0
    polls(time, wall, 0.2, cart, order)
    assert time.due_ms(0) == NOW - HOUR


async def test_a_poll_taken_before_a_rebalance_does_not_give_back_a_partition_given_up() -> None:
    """The consumer's word on partitions it polled just before a rebalance may come after
    it: a partition given up must stay given up, or its walks would keep its new owner
    out."""
    wall = Wall()
    time = clock(wall)
    time.assign([0, 1])
    await time.revoke([0])
    time.observe(
        {("a", 0): 5}, {}, written={("a", 0): 5}, heard={("a", 0): wall.ms, ("a", 1): wall.ms}
    )
    assert time.partitions == [1]
    assert not time.owns(0)
