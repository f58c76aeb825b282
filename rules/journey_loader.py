"""A folder of journey files → a JourneySet, or every problem in it with file, line and
reason (the same reporting as rules/loader.py: nothing of a folder with a problem runs,
so a worker keeps the journeys it had).

Each condition is compiled and then run on a typed sample of what it will see: the entry
event's for the entry, the branches and the key; the awaited event's for a wait_for; the
event's own for an exit_on and the goal.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from rules.expressions import Condition, ConditionError, Fields, read_together
from rules.journey_graph import problems as graph_problems
from rules.journey_model import Journey
from rules.loader import GoalIndex, GoalSpec, RuleProblem, Samples, load_folder, read_model
from rules.yaml_lines import Path as YamlPath
from rules.yaml_lines import line_of


@dataclass(frozen=True, slots=True)
class CompiledJourney:
    journey: Journey
    source: str  # the file it came from
    text: str  # what the file said: a version is kept as written, while anyone is in it
    entry: Condition
    key: Condition | None  # keyed re-entry: what tells one instance from another
    exit_on: tuple[Condition, ...]  # beside journey.exit_on
    waits_for: dict[str, Condition]  # by step id
    cases: dict[str, tuple[Condition, ...]]  # by step id, beside the branch's cases
    goal: GoalSpec
    # Each step's place in the file, by id: a move looks steps up at every stop.
    index_of: dict[str, int] = field(init=False)
    # The event types that may move an instance (its exits, its wait_for steps): asked for
    # each instance an event meets.
    awaits: frozenset[str] = field(init=False)
    goal_window_ms: int = field(init=False)  # asked at every stop and send
    # What an instance keeps of its entry event: what the branches read of it (they alone
    # read it after entry), not the whole event at every move and walk. None: all of it.
    entry_read: Fields | None = field(init=False)

    def __post_init__(self) -> None:
        spec = self.journey
        object.__setattr__(self, "index_of", {step.id: n for n, step in enumerate(spec.steps)})
        kinds = {exit_on.event for exit_on in spec.exit_on}
        kinds |= {step.wait_for.event for step in spec.steps if step.wait_for}
        object.__setattr__(self, "awaits", frozenset(kinds))
        object.__setattr__(self, "goal_window_ms", spec.goal.within_s * 1000)
        branches = (case for cases in self.cases.values() for case in cases)
        object.__setattr__(self, "entry_read", read_together(branches, "event"))


@dataclass(frozen=True)
class JourneySet:
    """Enabled journeys, indexed by the event types that move customers in them."""

    journeys: tuple[CompiledJourney, ...]
    by_id: dict[str, CompiledJourney] = field(init=False)
    entering: dict[str, tuple[CompiledJourney, ...]] = field(init=False)
    # An event that may take a customer out, or end a wait_for, of these journeys.
    awaited: dict[str, tuple[CompiledJourney, ...]] = field(init=False)
    goals: GoalIndex = field(init=False)

    def __post_init__(self) -> None:
        # Highest priority first: of two journeys an event moves a customer in, the one
        # that may claim the last send slot first is the one that should have it.
        enabled = sorted(
            (entry for entry in self.journeys if entry.journey.enabled),
            key=lambda entry: (-entry.journey.priority, entry.journey.id),
        )
        object.__setattr__(self, "by_id", {entry.journey.id: entry for entry in self.journeys})
        entering: defaultdict[str, list[CompiledJourney]] = defaultdict(list)
        awaited: defaultdict[str, list[CompiledJourney]] = defaultdict(list)
        for entry in enabled:
            journey = entry.journey
            entering[journey.entry.event].append(entry)
            for kind in sorted(entry.awaits):
                awaited[kind].append(entry)
        object.__setattr__(self, "entering", {k: tuple(v) for k, v in entering.items()})
        object.__setattr__(self, "awaited", {k: tuple(v) for k, v in awaited.items()})
        goals = GoalIndex.of((entry.goal, entry.journey.goal.within_s) for entry in enabled)
        object.__setattr__(self, "goals", goals)

    @classmethod
    def of(cls, compiled: Iterable[CompiledJourney]) -> JourneySet:
        return cls(tuple(sorted(compiled, key=lambda entry: entry.journey.id)))


def load_journeys(folder: Path, samples: Samples) -> JourneySet:
    """Every ``*.yaml`` under ``folder``; raises RuleSetError listing all problems."""
    compiled = load_folder(
        folder,
        lambda path: compile_journey_file(path, samples),
        lambda entry: entry.journey.id,
        "journey",
    )
    return JourneySet.of(compiled)


def compile_journey_file(
    path: Path | str, samples: Samples, text: str | None = None
) -> tuple[CompiledJourney | None, list[RuleProblem]]:
    """``text``: the file's text, read already (an archived version: ``path`` names it)."""
    source = str(path)
    read = read_model(path, Journey, "journey", text)
    if isinstance(read, list):
        return None, read
    journey, lines = read
    problems = [
        RuleProblem(source, line_of(lines, where), reason)
        for where, reason in graph_problems(journey)
    ]
    conditions = _Conditions(source, lines, samples, problems)
    entry_type = journey.entry.event
    entry = conditions.compile(journey.entry.condition, ("entry", "if"), entry_type)
    key = (
        conditions.compile(journey.entry.key, ("entry", "key"), None)
        if journey.entry.key is not None
        else None
    )
    exit_on = tuple(
        conditions.compile(each.condition, ("exit_on", n, "if"), each.event)
        for n, each in enumerate(journey.exit_on)
    )
    waits_for: dict[str, Condition | None] = {}
    cases: dict[str, tuple[Condition | None, ...]] = {}
    for index, step in enumerate(journey.steps):
        here = ("steps", index)
        if step.wait_for is not None:
            waits_for[step.id] = conditions.compile(
                step.wait_for.condition, (*here, "wait_for", "if"), step.wait_for.event
            )
        if step.branch is not None:
            cases[step.id] = tuple(
                conditions.compile(case.condition, (*here, "branch", "cases", n, "if"), entry_type)
                for n, case in enumerate(step.branch.cases)
            )
    goal_condition = conditions.compile(journey.goal.condition, ("goal", "if"), journey.goal.event)
    if problems or entry is None or goal_condition is None:
        return None, problems
    compiled = CompiledJourney(
        journey=journey,
        source=source,
        text=Path(path).read_text(encoding="utf-8") if text is None else text,
        entry=entry,
        key=key,
        exit_on=tuple(c for c in exit_on if c is not None),
        waits_for={k: c for k, c in waits_for.items() if c is not None},
        cases={k: tuple(c for c in v if c is not None) for k, v in cases.items()},
        goal=GoalSpec.of(journey.goal),
    )
    return compiled, []


@dataclass
class _Conditions:
    """Compiles a file's conditions, noting each problem at its line."""

    source: str
    lines: dict[YamlPath, int]
    samples: Samples
    problems: list[RuleProblem]

    def compile(self, text: str, where: YamlPath, sample_of: str | None) -> Condition | None:
        """``sample_of``: the event type to try it on (None: syntax only)."""
        try:
            condition = Condition(text)
        except ConditionError as exc:
            self._note(where, exc)
            return None
        if sample_of is not None and not self.check(condition, where, sample_of):
            return None
        return condition

    def check(self, condition: Condition, where: YamlPath, event_type: str) -> bool:
        try:
            condition.check(self.samples(event_type))
        except ConditionError as exc:
            self._note(where, exc, f" (on {event_type})")
            return False
        return True

    def _note(self, where: YamlPath, exc: ConditionError, suffix: str = "") -> None:
        named = ".".join(str(part) for part in where)
        line = line_of(self.lines, where)
        self.problems.append(RuleProblem(self.source, line, f"{named}{suffix}: {exc}"))
