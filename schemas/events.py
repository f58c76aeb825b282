"""CloudEvents 1.0 envelopes (structured mode), one class per event type.

Every class fixes its ``type`` and its ``data`` model; :data:`Event` is their
union, discriminated on ``type``, which is how bytes are validated in one pass.
"""

from __future__ import annotations

import re
from typing import Annotated, ClassVar, Final, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from schemas import payloads as p
from schemas.times import epoch_ms
from schemas.types import AnonymousId, CustomerId, EventId, EventTime, ShopId, Source

# Extension attributes: CloudEvents allows lower-case letters and digits, up to 20 of them.
_EXTENSION_NAME: Final = re.compile(r"^[a-z0-9]{1,20}$")
_MAX_EXTENSIONS: Final = 16


class Envelope(BaseModel):
    """The attributes every event carries (docs/DESIGN.md §1, "The event contract")."""

    model_config = ConfigDict(strict=True, frozen=True, extra="allow")

    # Which topic carries the type; whether it may come from a shopper not logged in.
    stream: ClassVar[str]
    anonymous_allowed: ClassVar[bool] = False

    specversion: Literal["1.0"]
    id: EventId
    source: Source
    time: EventTime
    shop: ShopId
    subject: CustomerId | None = None
    anonymousid: AnonymousId | None = None
    datacontenttype: Literal["application/json"] | None = None
    dataschema: Annotated[str, Field(max_length=512)] | None = None

    @model_validator(mode="after")
    def _who_and_extensions(self) -> Envelope:
        if self.subject is None and (self.anonymousid is None or not self.anonymous_allowed):
            raise PydanticCustomError(
                "missing_subject",
                "the customer id is required"
                + (" unless anonymousid is given" if self.anonymous_allowed else ""),
            )
        extra = self.__pydantic_extra__
        if extra:
            if len(extra) > _MAX_EXTENSIONS:
                raise PydanticCustomError(
                    "extension",
                    "more than {limit} extension attributes",
                    {"limit": _MAX_EXTENSIONS},
                )
            for name, value in extra.items():
                if not _EXTENSION_NAME.match(name):
                    raise PydanticCustomError(
                        "extension",
                        "'{name}' is not a CloudEvents extension name ([a-z0-9], at most 20)",
                        {"name": name},
                    )
                if not isinstance(value, str | int | bool) or (
                    isinstance(value, str) and len(value) > 256
                ):
                    raise PydanticCustomError(
                        "extension",
                        "extension '{name}' must be a short string, integer or bool",
                        {"name": name},
                    )
        return self

    @property
    def who(self) -> str:
        """The customer, or the anonymous session when no customer is known yet."""
        return self.subject or self.anonymousid or ""

    @property
    def time_ms(self) -> int:
        """``time`` in milliseconds since the epoch. Worked out once per event: the time
        zone pydantic parses an offset into costs a Python call each time it is asked.
        Kept beside the fields, where serialising ignores it (functools.cached_property
        would do the same behind a lock; a copy made with another ``time`` must not
        carry it over)."""
        kept: int | None = self.__dict__.get("time_ms")
        if kept is None:
            kept = self.__dict__["time_ms"] = epoch_ms(self.time)
        return kept


class _Browse(Envelope):
    stream: ClassVar[str] = "browse"
    anonymous_allowed: ClassVar[bool] = True


class _Cart(Envelope):
    stream: ClassVar[str] = "cart"
    anonymous_allowed: ClassVar[bool] = True


class _Order(Envelope):
    stream: ClassVar[str] = "order"


class _Review(Envelope):
    stream: ClassVar[str] = "review"


class _Customer(Envelope):
    stream: ClassVar[str] = "customer"


# fmt: off
class ItemViewed(_Browse):
    type: Literal["item.viewed"]
    data: p.ItemViewed

class ItemFavorited(_Browse):
    type: Literal["item.favorited"]
    data: p.ItemFavorited

class SearchPerformed(_Browse):
    type: Literal["search.performed"]
    data: p.SearchPerformed

class CartItemAdded(_Cart):
    type: Literal["cart.item_added"]
    data: p.CartItemAdded

class CartItemRemoved(_Cart):
    type: Literal["cart.item_removed"]
    data: p.CartItemRemoved

class CartCleared(_Cart):
    type: Literal["cart.cleared"]
    data: p.Empty

class OrderPlaced(_Order):
    type: Literal["order.placed"]
    data: p.OrderPlaced

class OrderPaid(_Order):
    type: Literal["order.paid"]
    data: p.OrderPaid

class OrderShipped(_Order):
    type: Literal["order.shipped"]
    data: p.OrderRef

class OrderDelivered(_Order):
    type: Literal["order.delivered"]
    data: p.OrderRef

class OrderCancelled(_Order):
    type: Literal["order.cancelled"]
    data: p.OrderRef

class OrderRefunded(_Order):
    type: Literal["order.refunded"]
    data: p.OrderRefunded

class ReviewPosted(_Review):
    type: Literal["review.posted"]
    data: p.ReviewPosted

class CustomerRegistered(_Customer):
    type: Literal["customer.registered"]
    data: p.CustomerFacts

class CustomerUpdated(_Customer):
    type: Literal["customer.updated"]
    data: p.CustomerFacts

class CustomerIdentified(_Customer):
    type: Literal["customer.identified"]
    data: p.CustomerIdentified

class SurveyAnswered(_Customer):
    type: Literal["survey.answered"]
    data: p.SurveyAnswered

class CustomerErasureRequested(_Customer):
    type: Literal["customer.erasure_requested"]
    data: p.Empty
# fmt: on

Event = Annotated[
    ItemViewed
    | ItemFavorited
    | SearchPerformed
    | CartItemAdded
    | CartItemRemoved
    | CartCleared
    | OrderPlaced
    | OrderPaid
    | OrderShipped
    | OrderDelivered
    | OrderCancelled
    | OrderRefunded
    | ReviewPosted
    | CustomerRegistered
    | CustomerUpdated
    | CustomerIdentified
    | SurveyAnswered
    | CustomerErasureRequested,
    Field(discriminator="type"),
]

EVENT_CLASSES: Final[tuple[type[Envelope], ...]] = get_args(get_args(Event)[0])
# "item.viewed" → ItemViewed, and so on for the whole catalogue.
EVENT_TYPES: Final[dict[str, type[Envelope]]] = {
    get_args(cls.model_fields["type"].annotation)[0]: cls for cls in EVENT_CLASSES
}
STREAM_OF_TYPE: Final[dict[str, str]] = {name: cls.stream for name, cls in EVENT_TYPES.items()}
