"""Rules in the merchant's words: every rule of the shipped pack in Chinese and English, and
the durations, quiet windows and limits the pack does not happen to use."""

from __future__ import annotations

import re
from typing import Any, get_args

import pytest

from console.i18n import CHANNELS, EVENTS, LANGUAGES
from console.rule_words import (
    channels_words,
    duration_words,
    goal_words,
    limits_sentence,
    limits_words,
    when_words,
)
from handlers.triggers.samples import rule_samples
from rules import PACKAGED_RULES
from rules.loader import load_rules
from rules.model import Rule
from schemas.events import EVENT_TYPES
from schemas.triggers import Channel

RULE_SET = load_rules(PACKAGED_RULES, rule_samples)
PACK = {compiled.rule.id: compiled.rule for compiled in RULE_SET.rules}
CAP = 3
# What Python would show: a dict, a string's quotes, its constants, a raw event type.
REPR = re.compile(r"[{}\[\]']|\bTrue\b|\bFalse\b|\bNone\b|[a-z]+[._][a-z_]+")

WHEN = {
    "abandoned-cart-coupon": (
        "加购后 30 分钟内未下单",
        "cart item added, no order within 30 minutes",
    ),
    "birthday-greeting": (
        "每天 09:00（客户当地时间），生日当天",
        "at 09:00 (customer’s local time), on their birthday",
    ),
    "browse-abandonment": (
        "浏览商品后 1 天内未加购",
        "item viewed, nothing added to the cart within 1 day",
    ),
    "dormant-winback": (
        "每天 10:00（客户当地时间），连续 180 天未下单",
        "at 10:00 (customer’s local time), after 180 days without an order",
    ),
    "holiday-care": (
        "每天 10:00（客户当地时间），节日当天：1月1日、9月25日、11月11日",
        "at 10:00 (customer’s local time), on the holidays 1 Jan, 25 Sep, 11 Nov",
    ),
    "negative-review-followup": ("发表评价时", "review posted"),
    "new-customer-welcome": ("注册时", "customer registered"),
    "post-delivery-survey": ("签收时", "order delivered"),
    "repurchase-reminder": (
        "每天 19:30（客户当地时间），签收 30 天后",
        "at 19:30 (customer’s local time), 30 days after a delivery",
    ),
    "vip-upgrade": ("付款时", "order paid"),
}

MARKETING = (
    "营销消息：需客户同意营销及该渠道，每个渠道每天最多 3 条",
    "marketing: needs consent to marketing and to the channel; at most 3 a day per channel",
)
LIMITS = {
    "abandoned-cart-coupon": (
        f"冷却 1 天，免打扰 22:00–08:00，10% 对照组（不发送，用于衡量效果），"
        f"延迟超过 1 天则不再发送，{MARKETING[0]}",
        "cooldown 1 day, quiet hours 22:00–08:00, 10% held out as a control group, "
        f"not sent if more than 1 day late, {MARKETING[1]}",
    ),
    "negative-review-followup": (
        "延迟超过 1 天则不再发送，服务消息：无需营销授权，不计入每日上限",
        "not sent if more than 1 day late, "
        "service message: needs no marketing consent, outside the daily cap",
    ),
    "repurchase-reminder": (
        f"冷却 14 天，免打扰 22:00–08:00，{MARKETING[0]}",
        f"cooldown 14 days, quiet hours 22:00–08:00, {MARKETING[1]}",
    ),
    "post-delivery-survey": (
        f"冷却 7 天，免打扰 21:00–09:00，10% 对照组（不发送，用于衡量效果），"
        f"延迟超过 1 天则不再发送，{MARKETING[0]}",
        "cooldown 7 days, quiet hours 21:00–09:00, 10% held out as a control group, "
        f"not sent if more than 1 day late, {MARKETING[1]}",
    ),
}


def rule(**fields: Any) -> Rule:
    base: dict[str, Any] = {
        "id": "edge",
        "version": 1,
        "description": "d",
        "when": {"event": "order.paid"},
        "then": {"channels": ["sms"], "template": "t"},
    }
    return Rule.model_validate(base | fields)


def test_the_whole_pack_is_described() -> None:
    assert set(WHEN) == set(PACK)


@pytest.mark.parametrize("rule_id", sorted(WHEN))
@pytest.mark.parametrize("language", LANGUAGES)
def test_each_rule_of_the_pack_reads_in_words(rule_id: str, language: str) -> None:
    pack_rule = PACK[rule_id]
    assert when_words(pack_rule, language) == WHEN[rule_id][LANGUAGES.index(language)]
    said = [
        when_words(pack_rule, language),
        *limits_words(pack_rule, language, CAP),
        channels_words(pack_rule, language),
        goal_words(pack_rule, language),
    ]
    for words in said:
        assert words.strip(), rule_id
        assert not REPR.search(words), (rule_id, words)


@pytest.mark.parametrize("rule_id", sorted(LIMITS))
@pytest.mark.parametrize("language", LANGUAGES)
def test_limits_read_as_one_sentence(rule_id: str, language: str) -> None:
    expected = LIMITS[rule_id][LANGUAGES.index(language)]
    assert limits_sentence(PACK[rule_id], language, CAP) == expected


def test_channels_in_the_order_they_are_tried_and_the_goal() -> None:
    cart = PACK["abandoned-cart-coupon"]
    assert channels_words(cart, "zh") == "推送、短信"
    assert channels_words(cart, "en") == "push, SMS"
    assert goal_words(cart, "zh") == "7 天内下单"
    assert goal_words(cart, "en") == "order placed within 7 days"


@pytest.mark.parametrize(
    ("text", "chinese", "english"),
    [
        ("90m", "90 分钟", "90 minutes"),
        ("36h", "36 小时", "36 hours"),
        ("7d", "7 天", "7 days"),
        ("1d", "1 天", "1 day"),
        ("60m", "1 小时", "1 hour"),
        ("1440m", "1 天", "1 day"),
        ("45s", "45 秒", "45 seconds"),
        ("1s", "1 秒", "1 second"),
    ],
)
def test_durations_in_the_largest_whole_unit(text: str, chinese: str, english: str) -> None:
    absence = {"after": "order.paid", "missing": "review.posted", "within": text}
    timed = rule(when={"absence": absence})
    assert when_words(timed, "zh") == f"付款后 {chinese}内未发表评价"
    assert when_words(timed, "en") == f"order paid, no review within {english}"
    assert duration_words(timed.absence.within_s, "en") == english


def test_a_quiet_window_within_one_day_and_an_empty_one() -> None:
    midday = rule(limits={"quiet_hours": {"start": "12:00", "end": "14:00"}})
    assert "免打扰 12:00–14:00" in limits_words(midday, "zh", CAP)
    assert "quiet hours 12:00–14:00" in limits_words(midday, "en", CAP)
    empty = rule(limits={"quiet_hours": {"start": "08:00", "end": "08:00"}})
    assert "免打扰起止都是 08:00，不生效" in limits_words(empty, "zh", CAP)
    assert "quiet hours start and end at 08:00: none in effect" in limits_words(empty, "en", CAP)


def test_every_limit_the_model_has() -> None:
    edge = rule(
        limits={"cooldown": "36h", "holdout": 0.125, "max_age": "90m", "transactional": True},
        goal={"event": "review.posted", "within": "36h", "if": "event.data.rating >= 4"},
    )
    assert limits_words(edge, "en", CAP) == [
        "cooldown 36 hours",
        "12.5% held out as a control group",
        "not sent if more than 90 minutes late",
        "service message: needs no marketing consent, outside the daily cap",
    ]
    assert limits_sentence(edge, "zh", CAP) == (
        "冷却 36 小时，12.5% 对照组（不发送，用于衡量效果），延迟超过 90 分钟则不再发送，"
        "服务消息：无需营销授权，不计入每日上限"
    )
    assert goal_words(edge, "zh") == "36 小时内发表评价"
    # No cooldown, no quiet hours, no holdout: nothing said of them; consent and the cap
    # are always said, with the worker's own cap.
    bare = rule()
    assert limits_words(bare, "en", 5) == [
        "not sent if more than 1 day late",
        MARKETING[1].replace("3", "5"),
    ]


def test_schedules_say_no_lateness_and_dates_off_the_calendar_stay_as_written() -> None:
    dates = ["02-29", "02-30", "12-31"]
    holidays = rule(when={"schedule": {"daily": "08:05", "occasion": "holiday", "dates": dates}})
    assert when_words(holidays, "zh") == (
        "每天 08:05（客户当地时间），节日当天：2月29日、02-30、12月31日"
    )
    assert when_words(holidays, "en") == (
        "at 08:05 (customer’s local time), on the holidays 29 Feb, 02-30, 31 Dec"
    )
    assert not any("late" in words for words in limits_words(holidays, "en", CAP))
    one_day = rule(when={"schedule": {"daily": "09:00", "occasion": "dormant", "days": 1}})
    assert (
        when_words(one_day, "en")
        == "at 09:00 (customer’s local time), after 1 day without an order"
    )


def test_every_event_type_and_channel_has_words_in_both_languages() -> None:
    assert set(EVENTS) == set(EVENT_TYPES)
    assert set(CHANNELS) == set(get_args(Channel))
    for words in (*EVENTS.values(), *CHANNELS.values()):
        assert all(word.strip() and not REPR.search(word) for word in words), words
