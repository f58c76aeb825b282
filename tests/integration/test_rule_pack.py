"""The rule pack as it ships: each rule fires when it should, and not when it should not."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from crmstream.settings import Settings
from handlers.pipeline import ProfilesAndTriggers
from schemas.events import Envelope
from tests.integration.test_trigger_stage import (
    T0,
    advance,
    cart_add,
    event,
    outbox,
    placed,
    registered,
    started,
)


@pytest.fixture
async def pack(settings: Settings) -> AsyncIterator[ProfilesAndTriggers]:
    triggers = settings.triggers.model_copy(
        update={"timer_disorder_s": 0.0, "timer_idle_s": 3600.0}
    )
    sink = started(settings.model_copy(update={"triggers": triggers}))
    yield sink
    await sink.close()


async def fired(sink: ProfilesAndTriggers) -> Counter[str]:
    return Counter(trigger["data"]["rule"] for trigger in await outbox(sink))


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def paid(minutes: float, total: str, order: str) -> Envelope:
    return event("order.paid", minutes, {"order_id": order, "total": total})


async def test_abandoned_cart_coupon_and_the_order_that_cancels_it(
    pack: ProfilesAndTriggers,
) -> None:
    await pack.handle([registered(0), registered(0, who="c2")])
    await pack.handle([cart_add(1), cart_add(2, who="c2"), placed(20, who="c2")])
    advance(pack, 60)
    await pack.fire_due()
    coupons = [t for t in await outbox(pack) if t["data"]["rule"] == "abandoned-cart-coupon"]
    assert [t["subject"] for t in coupons] == ["c1"]
    assert coupons[0]["data"]["offer"]["code"] == "CART10"


async def test_vip_upgrade_once_per_level(pack: ProfilesAndTriggers) -> None:
    await pack.handle([registered(0)])
    await pack.handle([placed(1), paid(2, "1200.00", "o1")])  # 1,200 points: silver
    await pack.handle([placed(3), paid(4, "100.00", "o2")])  # still silver
    await pack.handle([placed(5), paid(6, "4000.00", "o3")])  # 5,300 points: gold
    upgrades = [t for t in await outbox(pack) if t["data"]["rule"] == "vip-upgrade"]
    assert len(upgrades) == 2
    assert [u["data"]["reason"][-1]["values"]["profile.derived.vip_level"] for u in upgrades] == [
        "silver",
        "gold",
    ]


async def test_negative_reviews_reach_the_service_desk_and_good_ones_do_not(
    pack: ProfilesAndTriggers,
) -> None:
    no_consent = event("customer.registered", 0, {"consents": {"marketing": False}})
    await pack.handle([no_consent])
    await pack.handle(
        [
            event("review.posted", 5, {"item_id": "tea-1", "rating": 2}),
            event("review.posted", 6, {"item_id": "tea-2", "rating": 4}),
        ]
    )
    assert (await fired(pack))["negative-review-followup"] == 1


async def test_welcome_once_however_often_registration_is_resent(
    pack: ProfilesAndTriggers,
) -> None:
    await pack.handle([registered(0)])
    await pack.handle([registered(5)])
    assert (await fired(pack))["new-customer-welcome"] == 1


async def test_one_survey_a_week_after_deliveries(pack: ProfilesAndTriggers) -> None:
    await pack.handle([registered(0)])
    for day in (0, 2, 8):
        await pack.handle([event("order.delivered", day * 1440 + 60, {"order_id": f"o{day}"})])
    assert (await fired(pack))["post-delivery-survey"] == 2


async def test_browse_abandonment_needs_three_views_and_no_cart(
    pack: ProfilesAndTriggers,
) -> None:
    view = {"item_id": "tea-1", "category": "tea"}
    await pack.handle([registered(0), registered(0, who="c2")])
    await pack.handle([event("item.viewed", m, view) for m in (1, 2, 3)])
    await pack.handle([event("item.viewed", m, view, who="c2") for m in (1, 2, 3)])
    await pack.handle([cart_add(30, who="c2")])
    await pack.handle([event("item.viewed", 5, view, who="c3") for _ in range(2)])
    advance(pack, 2 * 1440)
    await pack.fire_due()
    reminders = [t for t in await outbox(pack) if t["data"]["rule"] == "browse-abandonment"]
    assert [t["subject"] for t in reminders] == ["c1"]


async def test_birthday_once_a_year(pack: ProfilesAndTriggers) -> None:
    consents = {"marketing": True, "sms": True, "push": True}
    await pack.handle(
        [event("customer.registered", 0, {"consents": consents, "birthday": "1990-03-02"})]
    )
    every = pack.schedules  # each run below is in a later time slot
    morning = datetime(2026, 3, 2, 1, 30, tzinfo=UTC)  # 09:30 in Shanghai
    await every.run(ms(morning))
    await every.run(ms(morning + timedelta(hours=2)))
    await every.run(ms(morning + timedelta(days=365)))
    assert (await fired(pack))["birthday-greeting"] == 2


async def test_win_back_once_per_dormancy(pack: ProfilesAndTriggers) -> None:
    await pack.handle([registered(0)])
    await pack.handle([placed(10), paid(11, "50.00", "o1")])
    dormant = T0 + timedelta(days=181, hours=-1, minutes=30)  # 10:30 in Shanghai, day 181
    await pack.schedules.run(ms(dormant))
    await pack.schedules.run(ms(dormant + timedelta(days=1)))
    assert (await fired(pack))["dormant-winback"] == 1
    back = 182 * 1440
    await pack.handle([placed(back), paid(back + 1, "50.00", "o2")])
    again = dormant + timedelta(days=182 + 1)
    await pack.schedules.run(ms(again))
    assert (await fired(pack))["dormant-winback"] == 2


async def test_holiday_care_on_its_dates_only(pack: ProfilesAndTriggers) -> None:
    await pack.handle([registered(0)])
    await pack.schedules.run(ms(datetime(2026, 11, 10, 3, tzinfo=UTC)))  # 11:00, 10 November
    assert (await fired(pack))["holiday-care"] == 0
    await pack.schedules.run(ms(datetime(2026, 11, 11, 3, tzinfo=UTC)))  # 11:00, Singles' Day
    assert (await fired(pack))["holiday-care"] == 1


async def test_repurchase_reminder_thirty_days_after_a_happy_delivery(
    pack: ProfilesAndTriggers,
) -> None:
    await pack.handle([registered(0), registered(0, who="c2")])
    await pack.handle(
        [
            event("order.delivered", 60, {"order_id": "o1"}),
            event("order.delivered", 60, {"order_id": "o2"}, who="c2"),
            event("review.posted", 120, {"item_id": "tea-1", "rating": 1}, who="c2"),
        ]
    )
    evening = T0 + timedelta(days=30, hours=8)  # 20:00 in Shanghai, 30 days on
    await pack.schedules.run(ms(evening))
    reminders = [t for t in await outbox(pack) if t["data"]["rule"] == "repurchase-reminder"]
    assert [t["subject"] for t in reminders] == ["c1"]  # c2 complained
