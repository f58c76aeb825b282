"""Why an event was refused: a bounded set of reasons, and the error that carries one."""

from __future__ import annotations

import enum

from crmstream.errors import EventError


class Reason(enum.StrEnum):
    """Every way an event can be refused. Bounded: it labels metrics and dead letters."""

    OVERSIZED = "oversized"
    NOT_UTF8 = "not_utf8"
    NOT_JSON = "not_json"
    NOT_OBJECT = "not_object"
    UNKNOWN_TYPE = "unknown_type"
    WRONG_TOPIC = "wrong_topic"
    MISSING_FIELD = "missing_field"
    INVALID_FIELD = "invalid_field"
    OUT_OF_RANGE = "out_of_range"
    BAD_KEY = "bad_key"
    FUTURE_TIME = "future_time"


class InvalidEventError(EventError):
    """An event that breaks the contract, with the reason and a message naming the field."""

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(f"{reason.value}: {message}")
        self.reason = reason
        self.message = message
