"""What a merchant tunes about profiles: RFM thresholds, tiers, lifecycle, loyalty (pure)."""

from __future__ import annotations

from decimal import Decimal
from functools import cached_property
from typing import Annotated

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from crmstream.errors import RuleError
from rules.send_gate import SendGate

Ascending = Annotated[list[Decimal], Field(min_length=4, max_length=4)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RfmThresholds(_Frozen):
    """Four cut points per measure give scores 1..5."""

    # Days since the last order at or under each cut point score 5, 4, 3, 2; beyond, 1.
    recency_days: Ascending = [Decimal(30), Decimal(60), Decimal(90), Decimal(180)]
    # Orders at or above each cut point score 2, 3, 4, 5; below the first, 1.
    frequency_orders: Ascending = [Decimal(2), Decimal(3), Decimal(5), Decimal(8)]
    # Net spend (major unit) at or above each cut point scores 2, 3, 4, 5.
    monetary: Ascending = [Decimal(100), Decimal(500), Decimal(2000), Decimal(5000)]

    @cached_property
    def cuts(self) -> tuple[list[int | Decimal], list[int | Decimal], list[int | Decimal]]:
        """The cut points as scoring compares them: recency in days, frequency in orders,
        monetary in cents; whole numbers as integers, which compare several times faster
        than decimals (and exactly alike)."""
        return (
            [_whole(cut) for cut in self.recency_days],
            [_whole(cut) for cut in self.frequency_orders],
            [_whole(cut * 100) for cut in self.monetary],
        )

    @model_validator(mode="after")
    def _ascending(self) -> RfmThresholds:
        for name in ("recency_days", "frequency_orders", "monetary"):
            cuts = getattr(self, name)
            if cuts != sorted(cuts):
                raise ValueError(f"{name} must be in ascending order")
        return self


def _whole(value: Decimal) -> int | Decimal:
    return int(value) if value == value.to_integral_value() else value


class Lifecycle(_Frozen):
    new_days: int = Field(default=30, ge=1)  # no order yet, first seen this recently
    active_days: int = Field(default=30, ge=1)
    at_risk_days: int = Field(default=90, ge=1)
    dormant_days: int = Field(default=180, ge=1)


class VipLevel(_Frozen):
    name: Annotated[str, Field(min_length=1, max_length=32)]
    min_points: int = Field(ge=0)


class ShopConfig(_Frozen):
    """One merchant's settings; every field has a default, so a file only says what differs."""

    timezone: str = "Asia/Shanghai"
    currency: str = "CNY"
    points_per_unit: Decimal = Field(default=Decimal(1), ge=0)  # points per yuan paid
    rfm: RfmThresholds = RfmThresholds()
    high_value_min_rfm: int = Field(default=12, ge=3, le=15)
    medium_value_min_rfm: int = Field(default=8, ge=3, le=15)
    lifecycle: Lifecycle = Lifecycle()
    loyal_orders: int = Field(default=3, ge=1)
    vip_levels: list[VipLevel] = Field(
        default_factory=lambda: [
            VipLevel(name="regular", min_points=0),
            VipLevel(name="silver", min_points=1000),
            VipLevel(name="gold", min_points=5000),
            VipLevel(name="platinum", min_points=20000),
        ],
        min_length=1,
    )

    # The journeys (rules/journeys/, by id) this shop has turned on: none unless named.
    journeys: list[str] = Field(default_factory=list)
    # Marketing sends per channel per customer's local day and week, across every rule
    # and journey, and how long a send that takes the last of them waits (rules/send_gate.py).
    send_gate: SendGate = SendGate()

    @cached_property
    def vip_by_points(self) -> list[VipLevel]:
        """The VIP levels, lowest threshold first (a stable sort: ties keep file order)."""
        return sorted(self.vip_levels, key=lambda vip: vip.min_points)

    def points_for(self, cents: int) -> int:
        """Points earned (or taken back) for an amount in cents; whole points, rounded down."""
        return int(Decimal(cents) * self.points_per_unit / 100)


def parse_shop_config(text: str, source: str) -> ShopConfig:
    """A YAML document as a ShopConfig; RuleError names the file and the problem."""
    try:
        data = yaml.safe_load(text) or {}
        return ShopConfig.model_validate(data)
    except yaml.YAMLError as exc:
        raise RuleError(f"{source}: not YAML: {exc}") from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise RuleError(f"{source}: {where}: {first['msg']}") from exc
