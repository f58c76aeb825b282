"""The ``data`` of every event type in the catalogue (docs/DESIGN.md §1, "The event contract")."""

from __future__ import annotations

import zoneinfo
from datetime import date
from functools import lru_cache
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from schemas.types import (
    AnonymousId,
    Currency,
    Gender,
    ItemId,
    Label,
    Money,
    OrderId,
    Quantity,
    Rating,
    Text,
)


class Payload(BaseModel):
    """Strict: unknown fields are refused, JSON types are not coerced ("3" is not 3)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Empty(Payload):
    """Types that carry nothing beyond the envelope."""


# ------------------------------------------------------------------ browse
class ItemViewed(Payload):
    item_id: ItemId
    category: Label
    price: Money | None = None


class ItemFavorited(Payload):
    item_id: ItemId
    category: Label


class SearchPerformed(Payload):
    query: Annotated[str, StringConstraints(min_length=1, max_length=256)]


# -------------------------------------------------------------------- cart
class CartItemAdded(Payload):
    item_id: ItemId
    category: Label
    qty: Quantity
    price: Money


class CartItemRemoved(Payload):
    item_id: ItemId
    qty: Quantity


# ------------------------------------------------------------------- order
class OrderLine(Payload):
    item_id: ItemId
    category: Label
    qty: Quantity
    price: Money


class OrderPlaced(Payload):
    order_id: OrderId
    items: Annotated[list[OrderLine], Field(min_length=1, max_length=200)]
    total: Money
    currency: Currency | None = None


class OrderPaid(Payload):
    order_id: OrderId
    total: Money


class OrderRef(Payload):
    """order.shipped, order.delivered, order.cancelled."""

    order_id: OrderId


class OrderRefunded(Payload):
    order_id: OrderId
    amount: Money


# ------------------------------------------------------------------ review
class ReviewPosted(Payload):
    item_id: ItemId
    order_id: OrderId | None = None
    rating: Rating
    text: Text | None = None


# ---------------------------------------------------------------- customer
class Consents(Payload):
    marketing: bool | None = None
    sms: bool | None = None
    email: bool | None = None
    push: bool | None = None


Tag = Annotated[str, StringConstraints(min_length=1, max_length=32, strip_whitespace=True)]
Sha256Hex = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]


@lru_cache(maxsize=1024)
def _known_zone(name: str) -> bool:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True


class CustomerFacts(Payload):
    """customer.registered and customer.updated: every field optional, absent means unchanged.

    Phone and e-mail may come in clear (the engine hashes them before storing)
    or already hashed (HMAC-SHA256, as the importer sends them).
    """

    birthday: date | None = None
    gender: Gender | None = None
    region: Label | None = None
    city: Label | None = None
    timezone: Annotated[str, StringConstraints(max_length=64)] | None = None
    member_level: Label | None = None
    tags: Annotated[list[Tag], Field(max_length=50)] | None = None
    consents: Consents | None = None
    phone: Annotated[str, StringConstraints(pattern=r"^\+?[0-9][0-9 \-]{4,19}$")] | None = None
    email: Annotated[str, StringConstraints(pattern=r"^[^@\s]{1,64}@[^@\s]{1,255}$")] | None = None
    phone_hash: Sha256Hex | None = None
    email_hash: Sha256Hex | None = None

    @field_validator("timezone")
    @classmethod
    def _iana_zone(cls, value: str | None) -> str | None:
        if value is not None and not _known_zone(value):
            raise ValueError(f"unknown time zone {value!r} (expected an IANA name)")
        return value

    @field_validator("birthday")
    @classmethod
    def _plausible_birthday(cls, value: date | None) -> date | None:
        if value is not None and value.year < 1900:
            raise ValueError("birthday before 1900")
        return value


class CustomerIdentified(Payload):
    anonymousid: AnonymousId


class SurveyAnswered(Payload):
    survey_id: ItemId
    score: Annotated[int, Field(ge=0, le=10)]
    scale: Literal[5, 10] = 5
    comment: Text | None = None

    @model_validator(mode="after")
    def _within_scale(self) -> SurveyAnswered:
        if self.scale == 5 and not 1 <= self.score <= 5:
            raise ValueError("score must be 1..5 on a 5-point scale")
        return self
