"""Bytes in, a valid event or a reason out: the front door of the engine.

The fast path is one call into pydantic-core, which checks UTF-8, parses JSON
and validates the whole envelope in Rust. Only a refused message takes the slow
path that works out which of the :class:`~schemas.errors.Reason` applies.
Nothing here raises on input: every message ends valid or refused.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

import orjson
from pydantic import TypeAdapter, ValidationError
from pydantic_core import ErrorDetails

from schemas.errors import InvalidEventError, Reason
from schemas.events import EVENT_TYPES, Envelope, Event
from schemas.times import epoch_ms

EVENT_ADAPTER: Final[TypeAdapter[Envelope]] = TypeAdapter(Event)
# The core validator itself: the TypeAdapter wrapper costs a Python call per event.
_validate_json: Final = EVENT_ADAPTER.validator.validate_json

DEFAULT_MAX_BYTES: Final = 64 * 1024
DEFAULT_FUTURE_SKEW: Final = timedelta(minutes=5)

_NOT_OBJECT: Final = frozenset({"dict_type", "model_type", "model_attributes_type"})
_MISSING: Final = frozenset({"missing", "missing_subject"})
_RANGE: Final = frozenset(
    {
        "greater_than", "greater_than_equal", "less_than", "less_than_equal",
        "too_short", "too_long", "string_too_short", "string_too_long",
        "decimal_max_digits", "decimal_max_places", "decimal_whole_digits", "finite_number",
    }
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Rejected:
    """A refused message: why, and a message naming the field."""

    reason: Reason
    message: str


@dataclass(frozen=True, slots=True)
class Decoder:
    """Validates messages of one deployment's limits."""

    max_bytes: int = DEFAULT_MAX_BYTES
    future_skew: timedelta = DEFAULT_FUTURE_SKEW

    def not_after(self, now: datetime) -> int:
        """The latest event time accepted at ``now``, in ms (computed once per batch: each
        event's time is compared with it as integers, without calling into the time zone
        parsed from the event)."""
        return epoch_ms(now + self.future_skew)

    def decode(
        self, value: bytes, key: bytes | None, stream: str | None, not_after: int
    ) -> Envelope | Rejected:
        """One message from topic ``stream`` (None: any topic, no key check)."""
        if len(value) > self.max_bytes:
            return Rejected(Reason.OVERSIZED, f"{len(value)} bytes, limit {self.max_bytes}")
        try:
            event: Envelope = _validate_json(value)
        except ValidationError as exc:
            return _explain(value, exc)
        if stream is not None:
            if event.stream != stream:
                return Rejected(
                    Reason.WRONG_TOPIC,
                    f"type {event.type} belongs on the {event.stream} topic, not {stream}",  # type: ignore[attr-defined]
                )
            if key is None or key.decode(errors="replace") != f"{event.shop}:{event.who}":
                return Rejected(
                    Reason.BAD_KEY,
                    f"key {key!r} should be {event.shop}:{event.who} (shop:customer)",
                )
        if event.time_ms > not_after:
            return Rejected(
                Reason.FUTURE_TIME,
                f"time {event.time.isoformat()} is more than "
                f"{self.future_skew.total_seconds():.0f}s ahead of the clock",
            )
        return event

    def require(self, value: bytes, not_after: int) -> Envelope:
        """Like decode, without topic and key checks, but raising InvalidEventError.

        This is the publisher's path: a bad event is refused before it is sent, with the
        same reason and message the worker would have dead-lettered it with.
        """
        result = self.decode(value, None, None, not_after)
        if isinstance(result, Rejected):
            raise InvalidEventError(result.reason, result.message)
        return result


def _explain(value: bytes, exc: ValidationError) -> Rejected:
    errors = exc.errors(include_url=False, include_input=False)
    if errors[0]["type"] == "json_invalid":
        try:
            value.decode()
        except UnicodeDecodeError as bad:
            return Rejected(Reason.NOT_UTF8, f"not UTF-8 at byte {bad.start}")
        try:
            orjson.loads(value)
        except orjson.JSONDecodeError as bad:
            return Rejected(Reason.NOT_JSON, f"not JSON: {bad}")
        # pydantic and orjson disagree only on exotic input (e.g. huge numbers).
        return Rejected(Reason.NOT_JSON, errors[0]["msg"])
    if _names_a_constant(value):
        return Rejected(Reason.NOT_JSON, "not JSON: NaN and Infinity are not JSON numbers")
    return _classify(errors)


class _ConstantError(ValueError):
    pass


def _refuse_constant(name: str) -> None:
    raise _ConstantError(name)


def _names_a_constant(value: bytes) -> bool:
    """Whether the message holds NaN or Infinity, which pydantic's parser reads but JSON
    does not have: without this, a bare ``Infinity`` would be refused as not an object."""
    try:
        json.loads(value, parse_constant=_refuse_constant)
    except _ConstantError:
        return True
    except (ValueError, RecursionError):
        return False  # whatever else the standard parser minds, pydantic's reading stands
    return False


def _classify(errors: list[ErrorDetails]) -> Rejected:
    first = errors[0]
    kind = first["type"]
    where = _location(first["loc"])
    if kind in _NOT_OBJECT and not first["loc"]:
        return Rejected(Reason.NOT_OBJECT, "a CloudEvent must be a JSON object")
    if kind == "union_tag_not_found":
        return Rejected(Reason.MISSING_FIELD, "type: field required")
    if kind == "union_tag_invalid":
        ctx = first.get("ctx") or {}
        return Rejected(
            Reason.UNKNOWN_TYPE,
            f"type {ctx.get('tag', '?')!r} is not in the catalogue "
            f"({len(EVENT_TYPES)} known types)",
        )
    if kind in _MISSING:
        reason = Reason.MISSING_FIELD
    elif kind in _RANGE:
        reason = Reason.OUT_OF_RANGE
    else:
        reason = Reason.INVALID_FIELD
    if kind == "missing_subject":
        where = "subject"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return Rejected(reason, f"{where}: {first['msg']}{more}")


def _location(loc: tuple[int | str, ...]) -> str:
    # The first element is the union's tag ("item.viewed"); the field path follows it.
    parts = loc[1:] if loc and isinstance(loc[0], str) and loc[0] in EVENT_TYPES else loc
    path = ""
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "event"
