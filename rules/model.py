"""A rule file as data (docs/DESIGN.md §3, "Rules and segments"): when it fires, on
what condition, what it sends.

Three kinds of ``when``::

    when: {event: review.posted}                                    # on event
    when: {absence: {after: cart.item_added, missing: order.placed, # A not followed
                     within: 30m, rearm: true}}                     # by B within D
    when: {schedule: {daily: "09:00", occasion: birthday}}          # on schedule

Everything here is checked before a worker starts: the event types exist, the
channels are known, durations parse. The CEL condition is compiled elsewhere
(rules/expressions.py); here it is only text.
"""

from __future__ import annotations

import functools
import re
from datetime import time
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from schemas.events import EVENT_TYPES
from schemas.triggers import Channel, RuleId

_DURATION = re.compile(r"^(\d+)(s|m|h|d)$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86_400}
_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_BAD_DURATION = "bad duration {!r}: use a whole number with s, m, h or d (30m, 7d)"
_BAD_CLOCK = "bad time of day {!r}: use HH:MM, 24-hour (09:00, 21:30)"
# An on-event or absence occurrence decided later than this after it happened is not
# sent (a worker catching up after an outage must not send yesterday's cart coupons).
DEFAULT_MAX_AGE_S = 86_400


def parse_duration(text: str) -> int:
    """'90s', '30m', '12h', '7d' → seconds."""
    if not isinstance(text, str):
        # Not a TypeError: only a ValueError becomes the rule file's error, with its line.
        raise ValueError(_BAD_DURATION.format(text))  # noqa: TRY004 -- just above
    return _duration_s(text)


def parse_clock(text: str) -> time:
    if not isinstance(text, str):
        raise ValueError(_BAD_CLOCK.format(text))  # noqa: TRY004 -- as parse_duration
    return _clock(text)


# Cached: sends and waits read their durations and clocks again on every move, and rule
# files hold few distinct ones (a bad one raises, which is never cached).
@functools.lru_cache(maxsize=1024)
def _duration_s(text: str) -> int:
    match = _DURATION.match(text.strip())
    if match is None:
        raise ValueError(_BAD_DURATION.format(text))
    return int(match.group(1)) * _UNIT_S[match.group(2)]


@functools.lru_cache(maxsize=1024)
def _clock(text: str) -> time:
    match = _CLOCK.match(text)
    if match is None:
        raise ValueError(_BAD_CLOCK.format(text))
    return time(int(match.group(1)), int(match.group(2)))


def _positive_duration(value: str) -> str:
    if parse_duration(value) <= 0:
        raise ValueError("within must be longer than zero")
    return value


def known_event_type(name: str) -> str:
    if name not in EVENT_TYPES:
        raise ValueError(f"unknown event type {name!r}")
    return name


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Absence(_Strict):
    after: str
    missing: str
    within: str
    # A new ``after`` event moves the deadline (and the occurrence) forward; without it, the
    # first one stands until it fires or is cancelled.
    rearm: bool = True

    _check_types = field_validator("after", "missing")(known_event_type)
    _check_within = field_validator("within")(_positive_duration)

    @property
    def within_s(self) -> int:
        return parse_duration(self.within)


ScheduleKind = Literal["birthday", "holiday", "dormant", "after_delivery"]


class Schedule(_Strict):
    daily: str  # local time of day in the customer's timezone
    occasion: ScheduleKind
    dates: list[Annotated[str, Field(pattern=r"^\d{2}-\d{2}$")]] = Field(default_factory=list)
    days: int | None = Field(default=None, ge=1)  # dormant: days since the last order; …

    @field_validator("daily")
    @classmethod
    def _daily(cls, value: str) -> str:
        parse_clock(value)
        return value

    @model_validator(mode="after")
    def _needs(self) -> Schedule:
        if self.occasion == "holiday" and not self.dates:
            raise ValueError("a holiday schedule needs dates (MM-DD)")
        if self.occasion in ("dormant", "after_delivery") and self.days is None:
            raise ValueError(f"an {self.occasion} schedule needs days")
        return self


class When(_Strict):
    event: str | None = None
    absence: Absence | None = None
    schedule: Schedule | None = None

    @field_validator("event")
    @classmethod
    def _event(cls, value: str | None) -> str | None:
        return None if value is None else known_event_type(value)

    @model_validator(mode="after")
    def _one(self) -> When:
        given = [name for name in ("event", "absence", "schedule") if getattr(self, name)]
        if len(given) != 1:
            raise ValueError("when takes exactly one of event, absence or schedule")
        return self


class Then(_Strict):
    # Tried in order: the first one the customer consented to carries the trigger.
    channels: Annotated[list[Channel], Field(min_length=1)]
    template: Annotated[str, Field(min_length=1, max_length=128)]
    offer: dict[str, Any] | None = None


class QuietHours(_Strict):
    start: str
    end: str

    @field_validator("start", "end")
    @classmethod
    def _clock(cls, value: str) -> str:
        parse_clock(value)
        return value


class Limits(_Strict):
    cooldown: str | None = None
    quiet_hours: QuietHours | None = None
    holdout: float = Field(default=0.0, ge=0.0, lt=1.0)
    # Marketing rules need the marketing consent and the channel's; service messages
    # (transactional) need neither, and pass the daily caps too.
    transactional: bool = False
    # How late an occurrence may still be decided and sent (DEFAULT_MAX_AGE_S if unset);
    # a later one is recorded as expired. Schedules take none: they fire on their day.
    max_age: str | None = None

    @field_validator("cooldown")
    @classmethod
    def _cooldown(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value)
        return value

    @field_validator("max_age")
    @classmethod
    def _max_age(cls, value: str | None) -> str | None:
        if value is not None and parse_duration(value) <= 0:
            raise ValueError("max_age must be longer than zero")
        return value

    @property
    def cooldown_s(self) -> int:
        return 0 if self.cooldown is None else parse_duration(self.cooldown)


class Goal(_Strict):
    """What converts a trigger: this event from the customer within this long after it
    (and its condition over the event, if any). An order within 7 days unless told."""

    event: str = "order.placed"
    within: str = "7d"
    condition: str = Field(default="true", alias="if")

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    _check_event = field_validator("event")(known_event_type)
    _check_within = field_validator("within")(_positive_duration)

    @property
    def within_s(self) -> int:
        return parse_duration(self.within)


class Rule(_Strict):
    id: RuleId
    version: Annotated[int, Field(ge=1)]
    description: Annotated[str, Field(min_length=1, max_length=500)]
    enabled: bool = True
    when: When
    condition: str = Field(default="true", alias="if")
    # CEL text giving what makes two firings the same occurrence; by default the event
    # (on event), the event that armed the timer (absence) or the local date (schedule).
    occurrence: str | None = None
    then: Then
    limits: Limits = Limits()
    goal: Goal = Goal()
    # Who takes a customer's last send slot of a day or week when two rules (or a rule
    # and a journey) compete for it (rules/send_gate.py): the higher.
    priority: Annotated[int, Field(ge=0, le=100)] = 50
    # A service message (a bad-review follow-up) passes the caps and needs no marketing
    # consent; ``limits.transactional: true`` says the same.
    category: Literal["marketing", "service"] | None = None

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    @property
    def kind(self) -> Literal["event", "absence", "schedule"]:
        if self.when.event is not None:
            return "event"
        return "absence" if self.when.absence is not None else "schedule"

    @model_validator(mode="after")
    def _max_age_not_on_schedules(self) -> Rule:
        if self.limits.max_age is not None and self.kind == "schedule":
            raise ValueError("limits.max_age is for event and absence rules, not schedules")
        return self

    @model_validator(mode="after")
    def _one_category(self) -> Rule:
        if self.category == "marketing" and self.limits.transactional:
            raise ValueError("category: marketing contradicts limits.transactional: true")
        return self

    @property
    def service(self) -> bool:
        """A service message: no marketing consent needed, no caps."""
        return self.category == "service" or self.limits.transactional

    @property
    def max_age_s(self) -> int:
        """How late an occurrence may be decided and still sent; 0 for schedules (never)."""
        if self.kind == "schedule":
            return 0
        if self.limits.max_age is None:
            return DEFAULT_MAX_AGE_S
        return parse_duration(self.limits.max_age)

    @property
    def absence(self) -> Absence:
        """The absence spec of an absence rule (the rule set indexes only those as such)."""
        if self.when.absence is None:
            raise ValueError(f"rule {self.id} is not an absence rule")
        return self.when.absence

    @property
    def trigger_type(self) -> str:
        return f"trigger.{self.id}"
