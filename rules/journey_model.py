"""A journey file as data (docs/DESIGN.md §3, "Journeys"): how a customer enters, the
steps they go through one after another, and what takes them out at once.

::

    id: new-member-onboarding
    version: 1
    description: "Welcome, then a coupon if nothing was bought, then a thank-you."
    priority: 50                  # who takes a customer's last send slot of a day
    category: marketing           # or service: passes the caps
    entry: {event: customer.registered, reentry: once}
    exit_on: [{event: customer.erasure_requested}]
    goal: {event: order.placed, within: 10d}
    steps:
      - {id: welcome, send: {channels: [sms, email], template: welcome}}
      - {id: pause, wait: 3d}
      - id: bought
        branch: {cases: [{if: "profile.counters.orders > 0", go: done}], else: coupon}
      - {id: coupon, send: {channels: [sms], template: first-order-coupon}}
      - {id: first-order, wait_for: {event: order.placed, timeout: 7d}}
      - {id: thanks, send: {channels: [sms], template: thanks}}
      - {id: done, exit: finished}

A step goes on to the step after it unless it says ``next``; past the last step the
customer exits. Targets name a step, or ``exit``. What is checked here is each step on
its own; how the steps fit together (targets, loops, reach) is rules/journey_graph.py's,
and the CEL conditions are compiled by rules/journey_loader.py.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from rules.model import Goal, QuietHours, known_event_type, parse_clock, parse_duration
from schemas.triggers import Channel, RuleId

EXIT: Final = "exit"  # the target that takes the customer out
STEP_KINDS: Final = ("send", "wait", "wait_for", "branch", "split", "exit")
SendOutcome = Literal["sent", "held", "capped", "no_consent"]
SEND_OUTCOMES: Final[tuple[SendOutcome, ...]] = ("sent", "held", "capped", "no_consent")
DEFAULT_LIFETIME: Final = "90d"

Target = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_\-]{0,63}$")]
# Counted by in the journey's stats, one a line: no control characters.
ExitReason = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f]+$")]


def _duration(value: str) -> str:
    if parse_duration(value) <= 0:
        raise ValueError("a duration must be longer than zero")
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class Send(_Strict):
    # Tried in order: the first one the customer consented to carries the trigger.
    channels: Annotated[list[Channel], Field(min_length=1)]
    template: Annotated[str, Field(min_length=1, max_length=128)]
    offer: dict[str, Any] | None = None
    quiet_hours: QuietHours | None = None
    # A service message inside a marketing journey (a follow-up after a bad survey).
    category: Literal["marketing", "service"] | None = None
    # Where each outcome leads; an outcome not named goes on like ``sent``.
    outcomes: dict[SendOutcome, Target] = Field(default_factory=dict)


class WaitUntil(_Strict):
    until: str  # local time of day in the customer's time zone (the shop's if unknown)

    @field_validator("until")
    @classmethod
    def _clock(cls, value: str) -> str:
        parse_clock(value)
        return value


class WaitFor(_Strict):
    event: str
    condition: str = Field(default="true", alias="if")
    timeout: str
    # Where the customer goes when the event comes (default: on), and when it does not.
    matched: Target | None = None
    timed_out: Target = EXIT

    _check_event = field_validator("event")(known_event_type)
    _check_timeout = field_validator("timeout")(_duration)

    @property
    def timeout_s(self) -> int:
        return parse_duration(self.timeout)


class Case(_Strict):
    condition: str = Field(alias="if")
    go: Target


class Branch(_Strict):
    cases: Annotated[list[Case], Field(min_length=1)]
    otherwise: Target | None = Field(default=None, alias="else")  # None: on


class SplitPath(_Strict):
    weight: Annotated[int, Field(ge=1, le=10_000)]
    go: Target | None = None
    # A holdout path exits at once and is counted as control, for the lift.
    holdout: bool = False

    @model_validator(mode="after")
    def _one(self) -> SplitPath:
        if self.holdout == (self.go is not None):
            raise ValueError("a path either goes to a step or is the holdout")
        return self


class Split(_Strict):
    paths: Annotated[list[SplitPath], Field(min_length=2)]


class Step(_Strict):
    id: Target
    next: Target | None = None  # None: the step after this one (after the last: exit)
    send: Send | None = None
    wait: str | WaitUntil | None = None  # a duration ("3d"), or {until: "10:00"}
    wait_for: WaitFor | None = None
    branch: Branch | None = None
    split: Split | None = None
    exit: ExitReason | None = None  # why the customer leaves here

    @model_validator(mode="before")
    @classmethod
    def _one_kind(cls, data: object) -> object:
        if not isinstance(data, dict):
            return data  # pydantic says it wants a mapping
        known = {"id", "next", *STEP_KINDS}
        unknown = [str(key) for key in data if key not in known]
        if unknown:
            raise ValueError(
                f"unknown step type {unknown[0]!r}: a step is one of " + ", ".join(STEP_KINDS)
            )
        kinds = [key for key in STEP_KINDS if data.get(key) is not None]
        if len(kinds) != 1:
            raise ValueError("a step takes exactly one of " + ", ".join(STEP_KINDS))
        return data

    @field_validator("id")
    @classmethod
    def _not_exit(cls, value: str) -> str:
        if value == EXIT:
            raise ValueError(f"{EXIT!r} is where customers leave; name the step otherwise")
        return value

    @field_validator("wait")
    @classmethod
    def _wait(cls, value: str | WaitUntil | None) -> str | WaitUntil | None:
        return _duration(value) if isinstance(value, str) else value

    @property
    def kind(self) -> str:
        return next(kind for kind in STEP_KINDS if getattr(self, kind) is not None)

    @property
    def waits_s(self) -> int | None:
        """How long the step may hold a customer at most; None if it never holds one."""
        if isinstance(self.wait, str):
            return parse_duration(self.wait)
        if self.wait is not None:
            return 86_400  # until a time of day: within one day
        return self.wait_for.timeout_s if self.wait_for is not None else None


class Entry(_Strict):
    event: str
    condition: str = Field(default="true", alias="if")
    # once: never again; after_exit: again once out; keyed: one instance per key at a time.
    reentry: Literal["once", "after_exit", "keyed"] = "after_exit"
    key: str | None = None  # CEL over the entry event, for keyed (event.data.order_id)
    max_instances: Annotated[int, Field(ge=1, le=20)] = 3
    min_interval: str | None = None

    _check_event = field_validator("event")(known_event_type)

    @field_validator("min_interval")
    @classmethod
    def _interval(cls, value: str | None) -> str | None:
        return None if value is None else _duration(value)

    @model_validator(mode="after")
    def _key(self) -> Entry:
        if (self.reentry == "keyed") != (self.key is not None):
            raise ValueError("a key is given exactly when reentry is keyed")
        return self


class ExitOn(_Strict):
    event: str
    condition: str = Field(default="true", alias="if")

    _check_event = field_validator("event")(known_event_type)


class Journey(_Strict):
    id: RuleId
    version: Annotated[int, Field(ge=1)]
    description: Annotated[str, Field(min_length=1, max_length=500)]
    enabled: bool = True
    priority: Annotated[int, Field(ge=0, le=100)] = 50
    category: Literal["marketing", "service"] = "marketing"
    entry: Entry
    exit_on: list[ExitOn] = Field(default_factory=list)
    goal: Goal = Goal()
    lifetime: str = DEFAULT_LIFETIME
    # finish: those inside finish the version they entered; exit: a new version takes them out.
    on_new_version: Literal["finish", "exit"] = "finish"
    steps: Annotated[list[Step], Field(min_length=1, max_length=100)]

    _check_lifetime = field_validator("lifetime")(_duration)

    @property
    def lifetime_s(self) -> int:
        return parse_duration(self.lifetime)
