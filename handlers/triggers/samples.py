"""Typed sample documents that rule conditions are checked against before they load."""

from __future__ import annotations

from functools import cache

from handlers.profile.read import COUNTERS, RECENCY, Profile, Stored, build_profile
from rules.activation import activation, event_view, profile_view
from rules.expressions import Activation
from rules.shop_config import ShopConfig
from schemas.samples import sample_event

_AT_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z


@cache
def sample_profile() -> Profile:
    """A profile with every field filled, so that a condition reading any of them is checked."""
    fields = dict.fromkeys(COUNTERS, "3")
    fields |= {name: str(_AT_MS - 86_400_000) for name in RECENCY}
    fields |= {
        "spend": "15900",
        "rating_sum": "9",
        "satisfied": "2",
        "birthday": "1990-05-01",
        "gender": "female",
        "region": "Zhejiang",
        "city": "Hangzhou",
        "member_level": "silver",
        "timezone": "Asia/Shanghai",
        "tags": '["tea"]',
        "consent_marketing": "1",
        "consent_sms": "1",
    }
    stored = Stored(
        fields=fields,
        buckets={},
        cart={"sku-1": "5900|0|tea|0|1:1"},
        affinity={"tea": "5"},
        recent=["sku-1"],
        favorites=["sku-1"],
    )
    return build_profile("sample-shop", "sample-customer", _AT_MS, stored, ShopConfig())


def rule_samples(event_type: str | None) -> Activation:
    event = None if event_type is None else event_view(sample_event(event_type))
    return activation(event, profile_view(sample_profile()), _AT_MS)
