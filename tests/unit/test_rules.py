"""Rule files: loading, the problems `rules check` names, and the shipped pack."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from handlers.triggers.samples import rule_samples
from rules import PACKAGED_RULES
from rules.expressions import Condition, ConditionError
from rules.loader import RuleSetError, load_rules
from rules.model import parse_duration
from streams.cli import cli

BROKEN = Path(__file__).parents[1] / "data" / "broken_rules"
PACK = PACKAGED_RULES

# file → (line, what the reason must say)
EXPECTED = {
    "bad-duration.yaml": (8, "when.absence.within: bad duration '30 minutes'"),
    "cel-syntax.yaml": (5, "if: CEL syntax error"),
    "cel-type.yaml": (5, "if (on order.paid): type error"),
    "cel-unknown-field.yaml": (5, "unknown field 'order_count'"),
    "cents-not-an-amount.yaml": (5, "if: cents() takes an amount in the major unit written out"),
    "money-in-major-units.yaml": (5, "unknown field 'total': money reads in exact cents"),
    "not-yaml.yaml": (4, "not valid YAML"),
    "unknown-channel.yaml": (6, "then.channels.1: unknown channel"),
    "unknown-event.yaml": (4, "when.event: unknown event type 'order.teleported'"),
    "unknown-field.yaml": (8, "then.tempalte_id: unknown field"),
}


def test_every_broken_rule_is_named_with_its_line_and_reason() -> None:
    with pytest.raises(RuleSetError) as caught:
        load_rules(BROKEN, rule_samples)
    found = {Path(p.file).name: p for p in caught.value.problems}
    assert set(found) == set(EXPECTED)
    for name, (line, reason) in EXPECTED.items():
        assert found[name].line == line, found[name]
        assert reason in found[name].reason, found[name]


def test_rules_check_exits_non_zero_and_lists_each_problem() -> None:
    result = CliRunner().invoke(cli, ["rules", "check", str(BROKEN)])
    assert result.exit_code == 1
    for name, (line, _) in EXPECTED.items():
        assert f"{name}:{line}:" in result.output


def test_the_shipped_pack_loads_and_is_listed() -> None:
    rules = load_rules(PACK, rule_samples)
    ids = {entry.rule.id for entry in rules.rules}
    assert {"abandoned-cart-coupon", "negative-review-followup", "vip-upgrade"} <= ids
    result = CliRunner().invoke(cli, ["rules", "check"])
    assert result.exit_code == 0, result.output


def test_rules_are_indexed_by_the_events_that_concern_them() -> None:
    rules = load_rules(PACK, rule_samples)
    assert [r.rule.id for r in rules.arming["cart.item_added"]] == ["abandoned-cart-coupon"]
    assert [r.rule.id for r in rules.cancelling["order.placed"]] == ["abandoned-cart-coupon"]
    assert "search.performed" not in rules.event_types


def test_a_duplicate_rule_id_is_refused(tmp_path: Path) -> None:
    text = (PACK / "vip-upgrade.yaml").read_text()
    (tmp_path / "a.yaml").write_text(text)
    (tmp_path / "b.yaml").write_text(text)
    with pytest.raises(RuleSetError, match="already taken"):
        load_rules(tmp_path, rule_samples)


@pytest.mark.parametrize(("text", "seconds"), [("90s", 90), ("30m", 1800), ("7d", 604_800)])
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


def test_a_condition_names_the_values_it_read() -> None:
    condition = Condition("profile.cart.value_cents >= 10000 && event.data.qty > 1")
    context = {"profile": {"cart": {"value_cents": 12050}}, "event": {"data": {"qty": 2}}}
    assert condition.holds(context)
    assert condition.values_read(context) == {
        "profile.cart.value_cents": 12050,
        "event.data.qty": 2,
    }


def test_a_condition_that_is_not_boolean_is_an_error() -> None:
    with pytest.raises(ConditionError, match="true or false"):
        Condition("1 + 1").holds({})


_PROFILE = {
    "facts": {"region": "华北", "tags": ["vip-list"], "city": "北京"},
    "counters": {"orders": 3, "favorites": 1, "views": 40},
    "derived": {"lifecycle": "active", "value_tier": "high"},
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Two levels down, CEL sees only the fields named; the same answer either way.
        ('profile.facts.region == "华北" && profile.counters.orders > 2', True),
        ('profile.facts.tags.exists(t, t == "vip-list")', True),
        # A section read whole (a call on it, an index, a size) is handed over whole.
        ("size(profile.counters) == 3", True),
        ('profile.facts["city"] == "北京"', True),
        ("profile.facts.size() == 3", True),
        ('has(profile.facts.birthday) || profile.derived.lifecycle == "dormant"', False),
        ('"views" in profile.counters && profile.counters.views == 40', True),
    ],
)
def test_a_condition_is_given_only_what_it_reads_and_answers_the_same(
    text: str, expected: bool
) -> None:
    assert Condition(text).holds({"profile": _PROFILE, "now": 0}) is expected
