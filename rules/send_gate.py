"""One send gate across every rule and journey of a shop (pure): how many marketing
messages a customer may get on each channel per local day and per rolling seven local
days, and how long a send that would take the last of them waits for a better claim.

::

    send_gate:
      window: 30s                 # default 0s: nothing is held for the gate
      caps:
        sms: {day: 1, week: 3}
        email: {day: 2}           # no weekly cap
                                  # a channel not named: the engine's daily cap, no weekly

The counting is Redis's (handlers/functions/gate.lua), for every worker at once; what is
worked out here is what each candidate carries to it: the customer's local day as a day
number (days count in the customer's own time zone), and the limits of its channel.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import cached_property
from typing import Annotated, Final

from pydantic import BaseModel, ConfigDict, Field, field_validator

from rules.model import parse_duration
from schemas.triggers import Channel

_EPOCH: Final = date(1970, 1, 1)


class ChannelCaps(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    # Unset: the engine's daily cap (TriggerSettings.daily_cap).
    day: Annotated[int, Field(ge=1, le=1000)] | None = None
    # Unset: none. Seven local days: today and the six before it.
    week: Annotated[int, Field(ge=1, le=7000)] | None = None


class SendGate(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    window: str = "0s"
    caps: dict[Channel, ChannelCaps] = Field(default_factory=dict)

    @field_validator("window")
    @classmethod
    def _window(cls, value: str) -> str:
        if not 0 <= parse_duration(value) <= 3600:
            raise ValueError("the collection window is between 0s and 1h")
        return value

    @cached_property
    def window_ms(self) -> int:
        """Asked for every send: worked out once."""
        return parse_duration(self.window) * 1000


@dataclass(frozen=True, slots=True)
class Slot:
    """What one marketing send asks of the gate: its channel's limits on its local day."""

    day: int  # the customer's local day, as days since 1970-01-01
    day_cap: int
    week_cap: int  # 0: none
    window_ms: int


NO_SLOT: Final = Slot(day=0, day_cap=0, week_cap=0, window_ms=0)  # a service send: no caps


def day_number(local_day: date) -> int:
    return (local_day - _EPOCH).days


def slot_for(gate: SendGate, channel: str, local_day: date, daily_cap: int) -> Slot:
    """The limits a marketing send on ``channel`` meets on the customer's ``local_day``;
    ``daily_cap`` is the engine's, for a channel the shop did not name."""
    caps = gate.caps.get(channel)  # type: ignore[call-overload]  # a Channel, or a refused one ("")
    return Slot(
        day=day_number(local_day),
        day_cap=daily_cap if caps is None or caps.day is None else caps.day,
        week_cap=0 if caps is None or caps.week is None else caps.week,
        window_ms=gate.window_ms,
    )
