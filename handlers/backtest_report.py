"""What a backtest found, tallied as the triggers are read back, one at a time.

A trigger is counted and its id kept; only the earliest few are kept whole (the sample),
so the report of a backtest that fired for every one of its events is counts and ids,
not every trigger's body.
"""

from __future__ import annotations

from bisect import insort
from dataclasses import dataclass, field
from typing import Any, Final

# A report lists this many invalid lines and counts the rest: a file that is wrong on
# every line costs a count, not a list as long as the file.
LISTED_INVALID_LINES: Final = 1000


def _order(trigger: dict[str, Any]) -> tuple[str, str]:
    return trigger["time"], trigger["id"]


@dataclass
class BacktestReport:
    rule: str
    sample_size: int = 5  # the earliest triggers kept whole, with their reasons
    events: int = 0
    invalid: list[tuple[int, str]] = field(default_factory=list)  # (line, reason), the first
    invalid_lines: int = 0
    triggers: int = 0  # sent, held and held out
    trigger_ids: list[str] = field(default_factory=list)
    held_quiet_hours: int = 0
    held_out: int = 0
    suppressed: dict[str, int] = field(default_factory=dict)
    waiting: int = 0  # absence timers still running at the end
    sample: list[dict[str, Any]] = field(default_factory=list)  # by time, the earliest
    _customers: set[tuple[str, str]] = field(default_factory=set)

    @property
    def customers(self) -> int:
        return len(self._customers)

    def note_invalid(self, line: int, reason: str) -> None:
        self.invalid_lines += 1
        if len(self.invalid) < LISTED_INVALID_LINES:
            self.invalid.append((line, reason))

    def note_trigger(self, trigger: dict[str, Any], *, held: bool) -> None:
        self.triggers += 1
        self.trigger_ids.append(trigger["id"])
        self._customers.add((trigger["shop"], trigger["subject"]))
        self.held_quiet_hours += held
        self.held_out += bool(trigger["data"].get("holdout"))
        if self.sample_size:
            insort(self.sample, trigger, key=_order)
            del self.sample[self.sample_size :]

    def summary(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "events": self.events,
            "invalid": [{"line": line, "reason": reason} for line, reason in self.invalid],
            "invalid_lines": self.invalid_lines,
            "triggers": self.triggers,
            "customers": self.customers,
            "held_quiet_hours": self.held_quiet_hours,
            "held_out": self.held_out,
            "suppressed": self.suppressed,
            "timers_waiting": self.waiting,
            "trigger_ids": sorted(self.trigger_ids),
            "sample": self.sample,
        }
