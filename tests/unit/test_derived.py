"""Scores a merchant reads off a profile: thresholds from the shop's YAML."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from crmstream.errors import RuleError
from handlers.shop_configs import ShopConfigs
from rules.derived import DAY_MS, Derived, derive
from rules.shop_config import ShopConfig, parse_shop_config

NOW = 1_000 * DAY_MS
CONFIG = ShopConfig()


def scores(days_since_order: int | None, orders: int, spend_yuan: int, **kw: int) -> Derived:
    return derive(
        as_of_ms=NOW,
        first_seen_ms=NOW - kw.get("first_seen_days_ago", 400) * DAY_MS,
        last_order_ms=None if days_since_order is None else NOW - days_since_order * DAY_MS,
        orders=orders,
        paid_orders=kw.get("paid_orders", orders),
        spend_cents=spend_yuan * 100,
        points=kw.get("points", 0),
        views=kw.get("views", 0),
        favorites=kw.get("favorites", 0),
        cart_adds=kw.get("cart_adds", 0),
        config=CONFIG,
    )


@pytest.mark.parametrize(
    ("days", "recency"), [(None, 1), (0, 5), (30, 5), (31, 4), (60, 4), (90, 3), (180, 2), (181, 1)]
)
def test_recency_score(days: int | None, recency: int) -> None:
    assert scores(days, 1, 0).recency_score == recency


@pytest.mark.parametrize(("orders", "frequency"), [(0, 1), (1, 1), (2, 2), (4, 3), (5, 4), (8, 5)])
def test_frequency_score(orders: int, frequency: int) -> None:
    assert scores(10, orders, 0).frequency_score == frequency


def test_value_tiers_and_stages() -> None:
    best = scores(3, 9, 8000, points=25_000)
    assert (best.rfm, best.value_tier, best.lifecycle, best.aipl, best.vip_level) == (
        "555", "high", "active", "loyal", "platinum",
    )  # fmt: skip
    lapsed = scores(120, 1, 120)
    assert (lapsed.value_tier, lapsed.lifecycle, lapsed.aipl) == ("low", "dormant", "purchased")
    assert scores(400, 1, 0).lifecycle == "churned"
    browser = scores(None, 0, 0, views=3, first_seen_days_ago=2)
    assert (browser.lifecycle, browser.aipl) == ("new", "interested")


def test_points_round_down_and_follow_the_rate() -> None:
    assert ShopConfig().points_for(19_999) == 199
    assert ShopConfig(points_per_unit=Decimal(2)).points_for(150) == 3


def test_a_shop_file_overrides_only_what_it_names(tmp_path: Path) -> None:
    (tmp_path / "default.yaml").write_text("points_per_unit: 1\nloyal_orders: 3\n")
    (tmp_path / "tea-house.yaml").write_text("points_per_unit: 5\n")
    configs = ShopConfigs(tmp_path)
    assert configs.for_shop("tea-house").points_per_unit == 5
    assert configs.for_shop("tea-house").loyal_orders == 3
    assert configs.for_shop("other").points_per_unit == 1


def test_a_bad_shop_file_names_itself() -> None:
    with pytest.raises(RuleError, match=r"x.yaml: rfm: .*recency_days must be in ascending order"):
        parse_shop_config("rfm: {recency_days: [90, 60, 30, 10]}", "x.yaml")


def test_the_packaged_default_is_valid() -> None:
    packaged = Path(__file__).resolve().parents[2] / "rules" / "shops"
    assert ShopConfigs(packaged).default == ShopConfig()
