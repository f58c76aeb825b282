"""The guards that need no store: channel and consent, quiet hours, holdout, trigger ids."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from crmstream.settings import Settings
from handlers.triggers import decide
from handlers.triggers.clock import StreamTime
from handlers.triggers.samples import rule_samples
from rules.loader import load_rules
from rules.model import QuietHours

SHANGHAI = ZoneInfo("Asia/Shanghai")
RULES = load_rules(Settings().triggers.rules_dir, rule_samples)


def profile_with(**consents: bool) -> dict[str, object]:
    return {"facts": {"timezone": "Asia/Shanghai", "consents": consents}}


def test_marketing_needs_both_consents_and_takes_the_first_channel_allowed() -> None:
    rule = RULES.get("abandoned-cart-coupon")
    assert rule is not None  # channels: push, sms
    assert decide.channel_for(rule, profile_with(marketing=True, push=False, sms=True)) == "sms"
    assert decide.channel_for(rule, profile_with(marketing=False, push=True, sms=True)) is None
    assert decide.channel_for(rule, profile_with(marketing=True)) is None


def test_a_transactional_rule_needs_no_consent() -> None:
    rule = RULES.get("negative-review-followup")
    assert rule is not None
    assert decide.channel_for(rule, profile_with()) == "service_desk"


def test_quiet_hours_hold_until_the_window_opens_in_local_time() -> None:
    quiet = QuietHours(start="22:00", end="08:00")
    late = datetime(2026, 3, 1, 23, 30, tzinfo=SHANGHAI)
    early = datetime(2026, 3, 2, 6, 0, tzinfo=SHANGHAI)
    opens = int(datetime(2026, 3, 2, 8, 0, tzinfo=SHANGHAI).timestamp() * 1000)
    assert decide.release_at(quiet, late) == opens
    assert decide.release_at(quiet, early) == opens
    assert decide.release_at(quiet, datetime(2026, 3, 2, 12, 0, tzinfo=SHANGHAI)) == 0
    daytime = QuietHours(start="12:00", end="14:00")
    assert decide.release_at(daytime, datetime(2026, 3, 2, 13, 0, tzinfo=SHANGHAI)) == int(
        datetime(2026, 3, 2, 14, 0, tzinfo=SHANGHAI).timestamp() * 1000
    )


def test_holdout_is_deterministic_and_near_its_share() -> None:
    chosen = [decide.in_holdout("r", "s", f"c{n}", 0.1) for n in range(20_000)]
    assert chosen == [decide.in_holdout("r", "s", f"c{n}", 0.1) for n in range(20_000)]
    assert 0.09 < sum(chosen) / len(chosen) < 0.11
    assert not decide.in_holdout("r", "s", "c1", 0.0)


def test_a_trigger_id_depends_on_rule_version_customer_and_occurrence_only() -> None:
    rule = RULES.get("vip-upgrade")
    assert rule is not None
    first = decide.trigger_id(rule, "s", "c1", "gold")
    assert first == decide.trigger_id(rule, "s", "c1", "gold")
    assert first != decide.trigger_id(rule, "s", "c1", "platinum")
    assert first != decide.trigger_id(rule, "s", "c2", "gold")


class Wall:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_event_time_waits_for_the_slowest_topic_behind_in_its_partition() -> None:
    wall = Wall()
    time = StreamTime(disorder_ms=0, idle_s=2, wall=wall)
    time.observe({("a", 0): 5_000, ("b", 0): 9_000}, behind={("a", 0): 500, ("c", 0): None})
    assert time.due_ms(0) == 0  # c not read yet: nothing is due
    time.observe({("c", 0): 7_000}, behind={("a", 0): 500, ("c", 0): 3})
    assert time.due_ms(0) == 5_000
    time.observe({}, behind={}, polled=[0])
    assert time.due_ms(0) == 5_000  # caught up just now: a or c may have more on its way
    wall.now += 0.6
    time.observe({}, behind={}, polled=[0])
    assert time.due_ms(0) == 9_000  # settled: the newest event of the partition
    wall.now += 2
    time.observe({}, behind={}, polled=[0])  # polls found it quiet for longer than idle_s
    assert time.due_ms(0) == 1_002_600  # the clock moves time on


def test_a_burst_read_on_one_topic_before_another_holds_time_back() -> None:
    """A producer's burst of past events reaches cart before order: the timer the cart
    add arms must not fire before the order, read a moment later, has been seen."""
    wall = Wall()
    time = StreamTime(disorder_ms=0, idle_s=2, wall=wall)
    time.observe({("cart", 0): 1_000, ("order", 0): 1_000}, behind={})
    wall.now += 1
    time.observe({}, behind={}, polled=[0])
    assert time.due_ms(0) == 1_000
    time.observe({("cart", 0): 5_000}, behind={})  # the burst's cart share, order not yet
    assert time.due_ms(0) == 1_000
    time.observe({("order", 0): 4_000}, behind={})
    time.observe({}, behind={}, polled=[0])
    assert time.due_ms(0) == 4_000
    wall.now += 0.6
    time.observe({}, behind={}, polled=[0])
    assert time.due_ms(0) == 5_000


def test_quiet_is_what_polls_confirm_not_time_passing() -> None:
    """A worker stalled on Redis, or polls that cannot reach the broker (reported as
    behind, lag unknown), never let the clock take over a replay."""
    wall = Wall()
    time = StreamTime(disorder_ms=0, idle_s=2, wall=wall)
    time.observe({("a", 0): 9_000}, behind={})
    wall.now += 0.6
    time.observe({}, behind={}, polled=[0])
    wall.now += 60  # no poll meanwhile
    assert time.due_ms(0) == 9_000
    time.observe({}, behind={("a", 0): None})  # the broker's word is stale
    wall.now += 60
    time.observe({}, behind={("a", 0): None})
    assert time.due_ms(0) == 9_000
    time.observe({}, behind={}, polled=[0])  # answering again: quiet starts over
    wall.now += 1
    time.observe({}, behind={}, polled=[0])
    assert time.due_ms(0) == 9_000
    wall.now += 1
    time.observe({}, behind={}, polled=[0])
    assert time.due_ms(0) == int(wall.now * 1000)


def test_a_partition_read_again_starts_its_time_over() -> None:
    wall = Wall()
    time = StreamTime(disorder_ms=0, idle_s=2, wall=wall)
    time.observe({("a", 0): 9_000}, behind={})
    time.rewind([0])
    assert time.behind(0)
    assert time.due_ms(0) == 0


def test_each_partition_keeps_its_own_time() -> None:
    wall = Wall()
    time = StreamTime(disorder_ms=0, idle_s=2, wall=wall)
    time.assign([0, 1, 2])
    # Partition 1 is far behind, partition 2 has not been read from: neither holds 0 back.
    time.observe(
        {("a", 0): 9_000, ("a", 1): 1_000},
        behind={("a", 1): 5_000, ("a", 2): None},
        polled=[0, 1, 2],
    )
    assert time.due_ms(0) == 9_000
    assert time.due_ms(1) == 1_000
    assert time.due_ms(2) == 0
    assert time.deferring(1)
    assert not time.deferring(0)
    time.revoke([1])
    assert time.partitions == [0, 2]
    assert time.catching_up() == []


def test_an_idle_worker_with_only_empty_partitions_moves_on_by_the_clock() -> None:
    wall = Wall()
    time = StreamTime(disorder_ms=0, idle_s=2, wall=wall)
    time.assign([3])
    assert time.behind(3)  # nothing said yet: assume a backlog
    time.observe({}, behind={}, polled=[3])  # fetched: nothing there
    assert not time.behind(3)
    wall.now += 3
    assert time.due_ms(3) == 1_003_000


def test_a_partition_settles_only_once_caught_up() -> None:
    wall = Wall()
    time = StreamTime(disorder_ms=0, idle_s=2, wall=wall)
    time.observe({("a", 0): 1_000}, behind={("a", 0): 10})
    assert time.deferring(0)
    time.settled(0)
    assert time.deferring(0)  # still behind
    time.observe({("a", 0): 2_000}, behind={})
    assert time.catching_up() == [0]
    time.settled(0)
    assert not time.deferring(0)


def test_a_few_fresh_records_behind_is_live_traffic_not_a_backlog() -> None:
    wall = Wall()
    time = StreamTime(disorder_ms=0, idle_s=2, wall=wall)
    now_ms = int(wall.now * 1000)
    time.observe({("a", 0): now_ms - 100, ("b", 0): now_ms - 60_000}, behind={})
    time.observe({("a", 0): now_ms}, behind={("a", 0): 3, ("b", 0): 2})
    assert time.due_ms(0) == now_ms - 60_000  # b's last event is a minute old: it may hold more
    time.observe({("b", 0): now_ms - 50}, behind={("a", 0): 3, ("b", 0): 2})
    assert time.due_ms(0) == now_ms  # both fresh and nearly caught up: live
