"""The membership change on ``crm.segments``: a customer entered or left a segment."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from schemas.types import CustomerId, EventId, EventTime, ShopId

SegmentId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_\-]{0,63}$")]
Change = Literal["entered", "exited"]


class SegmentChangeData(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    segment: SegmentId
    segment_version: Annotated[int, Field(ge=1)]
    # The customer's n-th change in this segment: odd ones enter, even ones leave.
    transition: Annotated[int, Field(ge=1)]
    # The event that changed the profile, or "recheck" when time alone did.
    caused_by: Annotated[str, StringConstraints(min_length=1, max_length=128)]


class SegmentChange(BaseModel):
    """A CloudEvent whose id is derived from shop, customer, segment and transition.

    Replaying a shop's changes in order gives its current memberships; a consumer
    deduplicates on ``id``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    specversion: Literal["1.0"] = "1.0"
    id: EventId
    source: Annotated[str, StringConstraints(min_length=1, max_length=256)] = "crmstream/segments"
    type: Literal["segment.entered", "segment.exited"]
    time: EventTime
    subject: CustomerId
    shop: ShopId
    datacontenttype: Literal["application/json"] = "application/json"
    data: SegmentChangeData
