"""Which rules are decided on arrival and which wait for their partition's event time,
from the rule's definition alone (rules/ordering.py), and how the CLI and the console
say so."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from console.i18n import LANGUAGES
from console.rule_words import ordering_words
from handlers.triggers.samples import rule_samples
from rules import PACKAGED_RULES
from rules.loader import CompiledRule, load_rules
from rules.ordering import BY_THE_CLOCK, IN_ORDER, ON_ARRIVAL

PACK = {c.rule.id: c for c in load_rules(PACKAGED_RULES, rule_samples).rules}
SERVICE = {
    "id": "service",
    "version": 1,
    "description": "a bad review: a person calls back",
    "when": {"event": "review.posted"},
    "if": "event.data.rating <= 2",
    "then": {"channels": ["service_desk"], "template": "callback"},
    "limits": {"transactional": True},
}


def compiled(tmp_path: Path, **changes: Any) -> CompiledRule:
    rule = {**SERVICE, **changes}
    (tmp_path / "rule.yaml").write_text(yaml.safe_dump(rule))
    (only,) = load_rules(tmp_path, rule_samples).rules
    return only


def test_the_packs_classes() -> None:
    names = {rule_id: entry.ordering.name for rule_id, entry in PACK.items()}
    assert names == {
        "abandoned-cart-coupon": IN_ORDER,
        "browse-abandonment": IN_ORDER,
        "birthday-greeting": BY_THE_CLOCK,
        "dormant-winback": BY_THE_CLOCK,
        "holiday-care": BY_THE_CLOCK,
        "repurchase-reminder": BY_THE_CLOCK,
        "negative-review-followup": ON_ARRIVAL,
        "new-customer-welcome": IN_ORDER,
        "post-delivery-survey": IN_ORDER,
        "vip-upgrade": IN_ORDER,
    }
    assert PACK["vip-upgrade"].ordering.describe() == (
        "in event-time order: a marketing send: consent and the daily cap change with other "
        "events; quiet hours follow the customer's time zone, which customer events set; "
        "reads the profile (derived), which other events change"
    )


def test_a_service_send_on_its_own_event_is_decided_on_arrival(tmp_path: Path) -> None:
    assert compiled(tmp_path).ordering.on_arrival
    cooled = compiled(tmp_path, limits={"transactional": True, "cooldown": "1d"})
    assert cooled.ordering.on_arrival  # its own cooldown, over events of one topic


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"limits": {}}, "marketing"),
        (
            {"limits": {"transactional": True, "quiet_hours": {"start": "22:00", "end": "08:00"}}},
            "quiet_hours",
        ),
        ({"if": "profile.counters.orders > 0"}, "profile"),
        ({"if": "size(profile) > 0"}, "profile"),
    ],
)
def test_what_another_event_may_change_waits(
    tmp_path: Path,
    changes: dict[str, Any],
    code: str,
) -> None:
    ordering = compiled(tmp_path, **changes).ordering
    assert not ordering.on_arrival
    assert [found for found, _ in ordering.reasons] == [code]


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_console_says_it_in_the_merchants_words(language: str) -> None:
    words = {rule_id: ordering_words(entry.ordering, language) for rule_id, entry in PACK.items()}
    if language == "zh":
        assert words["negative-review-followup"] == "收到事件即决策：服务消息，只看本事件"
        assert words["abandoned-cart-coupon"] == "按事件时间顺序决策：等待下单是否发生"
        assert words["birthday-greeting"] == "按时钟决策：每日定时"
    else:
        assert words["negative-review-followup"] == (
            "decided on arrival: a service send on its own event alone"
        )
        assert words["abandoned-cart-coupon"] == (
            "decided in event-time order: waits to see whether “order placed” happens"
        )
    assert all("{" not in said and "ordering_" not in said for said in words.values())
