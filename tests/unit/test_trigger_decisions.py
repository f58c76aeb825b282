"""The guards that need no store: channel and consent, quiet hours, holdout, trigger ids."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from handlers.triggers import decide
from handlers.triggers.samples import rule_samples
from rules import PACKAGED_RULES
from rules.loader import load_rules
from rules.model import QuietHours

SHANGHAI = ZoneInfo("Asia/Shanghai")
RULES = load_rules(PACKAGED_RULES, rule_samples)


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
