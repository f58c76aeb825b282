"""A folder of segment files → a SegmentSet, or every problem with file, line and reason.

A segment is a named condition over the profile (docs/DESIGN.md §3,
"Rules and segments")::

    id: dormant
    version: 2
    description: Bought before, nothing for 91 to 180 days
    if: profile.derived.lifecycle == "dormant" && profile.counters.orders > 0

Membership is kept as of now. A condition that reads the clock (``now``,
``profile.as_of``), a sliding window or a derived score can change with no event
at all: such segments are *timed*, and a periodic pass evaluates them again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Final

from pydantic import BaseModel, ConfigDict, Field

from rules.expressions import ALL, Activation, Condition, ConditionError
from rules.loader import (
    RuleProblem,
    compile_condition,
    load_folder,
    read_model,
)
from schemas.segments import SegmentId

# Profile sections whose values move with time alone (handlers/profile/read.py builds them
# as of a moment), and the variables that are the moment itself.
_TIMED_SECTIONS: Final = frozenset({"windows", "derived", "as_of"})


class Segment(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    id: SegmentId
    version: Annotated[int, Field(ge=1)]
    description: Annotated[str, Field(min_length=1, max_length=500)]
    enabled: bool = True
    condition: str = Field(alias="if")


@dataclass(frozen=True, slots=True)
class CompiledSegment:
    segment: Segment
    condition: Condition
    source: str

    @property
    def timed(self) -> bool:
        reads = self.condition.reads
        profile = reads.get("profile", frozenset())
        return "now" in reads or profile == ALL or bool(profile & _TIMED_SECTIONS)


@dataclass(frozen=True)
class SegmentSet:
    """Enabled segments in a fixed order (the flags of functions/segments.lua follow it)."""

    segments: tuple[CompiledSegment, ...]
    sections: frozenset[str] = field(init=False)  # of the profile, to build for them
    timed: tuple[CompiledSegment, ...] = field(init=False)
    # All the conditions (or the timed ones) as one CEL list: a customer's profile is handed
    # to CEL once, not once per segment, which is most of what a segment costs.
    together: Condition | None = field(init=False)
    timed_together: Condition | None = field(init=False)
    # What functions/segments.lua is told of the set ("id:version,…"), and each one's flag position.
    header: str = field(init=False)
    positions: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        sections: set[str] = {"facts"}
        for entry in self.segments:
            reads = entry.condition.reads.get("profile", frozenset())
            sections |= {"*"} if reads == ALL else reads
        object.__setattr__(self, "sections", frozenset(sections))
        timed = tuple(s for s in self.segments if s.timed)
        object.__setattr__(self, "timed", timed)
        object.__setattr__(self, "together", _together(self.segments))
        object.__setattr__(self, "timed_together", _together(timed))
        header = ",".join(f"{s.segment.id}:{s.segment.version}" for s in self.segments)
        object.__setattr__(self, "header", header)
        positions = {entry.segment.id: n for n, entry in enumerate(self.segments)}
        object.__setattr__(self, "positions", positions)

    def program(self, segments: tuple[CompiledSegment, ...]) -> Condition | None:
        """The one-call program for these segments (all of them, or the timed ones)."""
        if segments == self.segments:
            return self.together
        return self.timed_together if segments == self.timed else None

    def get(self, segment_id: str) -> CompiledSegment | None:
        return next((s for s in self.segments if s.segment.id == segment_id), None)


def _together(segments: tuple[CompiledSegment, ...]) -> Condition | None:
    if not segments:
        return None
    return Condition("[" + ", ".join(f"({s.condition.text})" for s in segments) + "]")


EMPTY: Final = SegmentSet(())


def load_segments(folder: Path, sample: Activation) -> SegmentSet:
    """Every ``*.yaml`` under ``folder``, each condition checked on ``sample`` (a typed
    profile); raises RuleSetError listing all problems."""
    compiled = load_folder(
        folder, lambda path: _compile_file(path, sample), lambda e: e.segment.id, "segment"
    )
    enabled = (entry for entry in compiled if entry.segment.enabled)
    return SegmentSet(tuple(sorted(enabled, key=lambda entry: entry.segment.id)))


def _compile_file(
    path: Path, sample: Activation
) -> tuple[CompiledSegment | None, list[RuleProblem]]:
    source = str(path)
    read = read_model(path, Segment, "segment")
    if isinstance(read, list):
        return None, read
    segment, lines = read
    problems: list[RuleProblem] = []
    condition = compile_condition(segment.condition, ("if",), source, lines, problems)
    if condition is None:
        return None, problems
    if "event" in condition.reads:
        reason = "if: a segment is about the profile alone (it sees profile and now, no event)"
        return None, [RuleProblem(source, lines.get(("if",), 1), reason)]
    try:
        condition.check(sample)
    except ConditionError as exc:
        return None, [RuleProblem(source, lines.get(("if",), 1), f"if: {exc}")]
    return CompiledSegment(segment, condition, source), []
