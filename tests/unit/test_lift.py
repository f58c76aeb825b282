"""Lift arithmetic against numbers worked out by hand."""

from __future__ import annotations

import pytest

from rules.lift import RuleStats, two_proportions


def test_two_proportions_by_hand() -> None:
    # 30/100 sent vs 20/100 held out: unpooled SE √(.3·.7/100 + .2·.8/100) = 0.060828;
    # pooled p .25, SE √(.25·.75·.02) = 0.061237, z = 1.63299, two-sided p = 0.10247.
    lift = two_proportions(30, 100, 20, 100)
    assert lift.lift == pytest.approx(0.1)
    assert lift.relative == pytest.approx(0.5)
    assert lift.ci_low == pytest.approx(0.1 - 1.959964 * 0.060828, abs=1e-5)
    assert lift.ci_high == pytest.approx(0.1 + 1.959964 * 0.060828, abs=1e-5)
    assert lift.p_value == pytest.approx(0.10247, abs=1e-4)


def test_an_empty_group_has_no_lift() -> None:
    lift = two_proportions(3, 10, 0, 0)
    assert lift.rate_sent == pytest.approx(0.3)
    assert lift.rate_holdout is None
    assert lift.lift is None


def test_no_difference_at_all_is_not_significant() -> None:
    assert two_proportions(0, 50, 0, 50).p_value == 1.0


def test_rule_stats_add_up() -> None:
    stats = RuleStats(
        "welcome",
        {"sent": 60, "held": 10, "holdout": 20, "consent": 5, "cooldown": 3, "capped": 2,
         "converted": 14, "converted_holdout": 2},
    )  # fmt: skip
    shown = stats.as_dict()
    assert shown["fired"] == 100
    assert shown["sent"] == 70
    assert shown["suppressed"] == {"consent": 5, "cooldown": 3, "capped": 2, "expired": 0}
    assert shown["conversion_rate"] == pytest.approx(0.2)
    assert shown["conversion_rate_holdout"] == pytest.approx(0.1)
