"""The trigger message on ``crm.triggers`` (docs/DESIGN.md §4, "The trigger contract"):
what marketing systems consume."""

from __future__ import annotations

import re
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from schemas.types import CustomerId, EventId, EventTime, ItemId, ShopId

RULE_ID_PATTERN: Final = r"^[a-z0-9][a-z0-9_\-]{0,63}$"
RuleId = Annotated[str, StringConstraints(pattern=RULE_ID_PATTERN)]


def is_rule_id(text: str) -> bool:
    """A rule's or a journey's id, as the contract spells them."""
    return re.fullmatch(RULE_ID_PATTERN, text) is not None


Channel = Literal["sms", "email", "push", "coupon", "in_app", "service_desk"]
Scalar = str | int | float | bool | None


class MatchedCondition(BaseModel):
    """One condition that held, in words, with the values it read."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    condition: Annotated[str, StringConstraints(min_length=1, max_length=500)]
    values: dict[str, Scalar] = Field(default_factory=dict)


class TriggerData(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    rule: RuleId
    rule_version: Annotated[int, Field(ge=1)]
    channel: Channel
    template: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    offer: dict[str, Any] | None = None
    items: Annotated[list[ItemId], Field(max_length=50)] = Field(default_factory=list)
    reason: list[MatchedCondition]
    holdout: bool = False
    caused_by: Annotated[list[EventId], Field(max_length=100)] = Field(default_factory=list)
    # A journey's send: ``rule`` names the journey, ``rule_version`` its version, and this
    # the step (none for a rule's trigger).
    journey_step: RuleId | None = None


class Trigger(BaseModel):
    """A CloudEvent whose id is derived from rule, shop, customer and occurrence.

    A consumer deduplicates on ``id``: a replayed or retried occurrence keeps it.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    specversion: Literal["1.0"] = "1.0"
    id: EventId
    source: Annotated[str, StringConstraints(min_length=1, max_length=256)] = "crmstream/rules"
    type: Annotated[str, StringConstraints(pattern=r"^trigger\.[a-z0-9][a-z0-9_\-]{0,63}$")]
    time: EventTime
    subject: CustomerId
    shop: ShopId
    datacontenttype: Literal["application/json"] = "application/json"
    data: TriggerData
