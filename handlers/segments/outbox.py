"""A segment outbox entry → its CloudEvent on ``crm.segments``.

The Function stores a change as plain fields; the message is made here, at
relay time, from those fields alone: its id is UUIDv5 of shop, customer,
segment and transition, so a change relayed twice keeps its id.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Final

from schemas.ids import uuid5_text
from schemas.segments import SegmentChange, SegmentChangeData

SEGMENT_NAMESPACE: Final = uuid.UUID("0c9b1d52-8f3e-5a61-b0d4-73676d656e74")

Fields = dict[bytes, bytes]


def change_id(shop: str, customer: str, segment: str, transition: int) -> str:
    name = "\x1f".join((shop, customer, segment, str(transition)))
    return uuid5_text(SEGMENT_NAMESPACE, name)


def render_change(fields: Fields) -> tuple[bytes, bytes, bytes]:
    """(key, value, id) of the message for an outbox entry of functions/segments.lua."""
    text = {name.decode(): value.decode() for name, value in fields.items()}
    shop, customer, segment = text["shop"], text["customer"], text["segment"]
    transition = int(text["n"])
    # Built from the Function's own fields, which came from validated events and segment
    # files: constructed without validating again, as this runs for every change relayed.
    message = SegmentChange.model_construct(
        id=change_id(shop, customer, segment, transition),
        type="segment.entered" if text["change"] == "entered" else "segment.exited",
        time=datetime.fromtimestamp(int(text["at"]) / 1000, UTC),
        subject=customer,
        shop=shop,
        data=SegmentChangeData.model_construct(
            segment=segment,
            segment_version=int(text["version"]),
            transition=transition,
            caused_by=text["cause"],
        ),
    )
    return f"{shop}:{customer}".encode(), message.model_dump_json().encode(), message.id.encode()


def render_trigger(fields: Fields) -> tuple[bytes, bytes, bytes]:
    """(key, value, id) of a trigger outbox entry: stored ready to send (functions/emit.lua)."""
    return fields[b"key"], fields[b"event"], fields[b"id"]
