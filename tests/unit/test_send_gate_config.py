"""A shop's send gate and a rule's place at it, as written in their files (pure)."""

from __future__ import annotations

from datetime import date

import pytest

from crmstream.errors import RuleError
from rules.model import Rule
from rules.send_gate import SendGate, day_number, slot_for
from rules.shop_config import parse_shop_config

RULE = {
    "id": "r", "version": 1, "description": "d", "when": {"event": "order.placed"},
    "then": {"channels": ["sms"], "template": "t"},
}  # fmt: skip


def test_a_channel_not_named_has_the_engines_daily_cap_and_no_week() -> None:
    gate = parse_shop_config("send_gate: {window: 30s, caps: {sms: {day: 1, week: 3}}}", "f")
    day = date(2026, 12, 6)
    sms = slot_for(gate.send_gate, "sms", day, daily_cap=5)
    assert (sms.day, sms.day_cap, sms.week_cap, sms.window_ms) == (day_number(day), 1, 3, 30_000)
    email = slot_for(gate.send_gate, "email", day, daily_cap=5)
    assert (email.day_cap, email.week_cap) == (5, 0)
    assert day_number(date(1970, 1, 2)) == 1


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("send_gate: {window: 2h}", "send_gate.window"),
        ("send_gate: {window: soon}", "send_gate.window"),
        ("send_gate: {caps: {pigeon: {day: 1}}}", "send_gate.caps.pigeon"),
        ("send_gate: {caps: {sms: {day: 0}}}", "send_gate.caps.sms.day"),
        ("send_gate: {caps: {sms: {weekly: 2}}}", "send_gate.caps.sms.weekly"),
    ],
)
def test_a_bad_gate_is_refused_saying_where(text: str, said: str) -> None:
    with pytest.raises(RuleError, match=said.replace(".", r"\.")):
        parse_shop_config(text, "shop.yaml")


def test_the_default_gate_holds_nothing() -> None:
    assert SendGate().window_ms == 0
    assert parse_shop_config("", "f").send_gate == SendGate()


def test_a_rules_priority_and_category() -> None:
    rule = Rule.model_validate(RULE)
    assert (rule.priority, rule.service) == (50, False)
    assert Rule.model_validate({**RULE, "category": "service"}).service
    assert Rule.model_validate({**RULE, "limits": {"transactional": True}}).service
    with pytest.raises(ValueError, match="contradicts"):
        Rule.model_validate({**RULE, "category": "marketing", "limits": {"transactional": True}})
    with pytest.raises(ValueError, match="less than or equal to 100"):
        Rule.model_validate({**RULE, "priority": 101})
