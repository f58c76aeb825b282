"""JSON Schema (2020-12) of the contract, for storefronts written in other languages.

Pure: returns the documents; writing them is the command line's job.
"""

from __future__ import annotations

from typing import Any, Final

from pydantic import BaseModel, TypeAdapter

from schemas.events import EVENT_TYPES, Event
from schemas.segments import SegmentChange
from schemas.triggers import Trigger

DIALECT: Final = "https://json-schema.org/draft/2020-12/schema"
BASE_ID: Final = "https://crmstream.dev/schemas/"


def _document(schema: dict[str, Any], name: str, title: str) -> dict[str, Any]:
    return {"$schema": DIALECT, "$id": f"{BASE_ID}{name}", **schema, "title": title}


def _who_rule(cls: type[BaseModel]) -> dict[str, Any]:
    """The rule the model checks in code: who the event is about."""
    if getattr(cls, "anonymous_allowed", False):
        return {"anyOf": [{"required": ["subject"]}, {"required": ["anonymousid"]}]}
    return {"required": [*cls.model_json_schema()["required"], "subject"]}


def export_schemas() -> dict[str, dict[str, Any]]:
    """File name → JSON Schema document: one per event type, the union, the trigger
    and the segment change."""
    documents: dict[str, dict[str, Any]] = {}
    for event_type, cls in sorted(EVENT_TYPES.items()):
        schema = cls.model_json_schema(mode="validation")
        schema.update(_who_rule(cls))
        name = f"{event_type}.json"
        documents[name] = _document(schema, name, f"crmstream event {event_type}")
    union = TypeAdapter(Event).json_schema(mode="validation")
    documents["event.json"] = _document(union, "event.json", "crmstream event (any type)")
    documents["trigger.json"] = _document(
        Trigger.model_json_schema(mode="validation"), "trigger.json", "crmstream trigger"
    )
    documents["segment_change.json"] = _document(
        SegmentChange.model_json_schema(mode="validation"),
        "segment_change.json",
        "crmstream segment change",
    )
    return documents
