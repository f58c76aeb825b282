"""A folder of rule files → a RuleSet, or every problem in it with file, line and reason.

One rule per ``*.yaml`` file. Nothing half-loaded ever runs: a set with a
problem is refused as a whole, so a worker keeps the rules it had.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from crmstream.errors import RuleError
from rules.expressions import ALL, Activation, Condition, ConditionError
from rules.model import Goal, Rule
from rules.ordering import Ordering, ordering
from rules.yaml_lines import Path as YamlPath
from rules.yaml_lines import line_of, load_with_lines

T = TypeVar("T")

# Event type (None for a schedule) → a typed sample activation to check conditions on.
Samples = Callable[[str | None], Activation]


@dataclass(frozen=True, slots=True)
class RuleProblem:
    file: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}"


class RuleSetError(RuleError):
    """A rule set with problems; ``problems`` lists every one of them."""

    def __init__(self, problems: list[RuleProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(problem) for problem in problems))


@dataclass(frozen=True, slots=True)
class GoalSpec:
    """A conversion goal, shared by the rules that name the same event and condition."""

    key: str  # short and stable: what a goal event is recorded under in Redis
    event: str
    condition: Condition

    @classmethod
    def of(cls, goal: Goal) -> GoalSpec:
        text = f"{goal.event}\x1f{goal.condition.strip()}"
        key = hashlib.blake2b(text.encode(), digest_size=6).hexdigest()
        return cls(key, goal.event, Condition(goal.condition))


@dataclass(frozen=True, slots=True)
class GoalIndex:
    """Goals by the event type that may convert them, and the widest window: what a
    batch's goal events are looked up in, for the rules and the journeys together."""

    by_event: Mapping[str, tuple[GoalSpec, ...]]
    widest_ms: int

    @classmethod
    def of(cls, goals: Iterable[tuple[GoalSpec, int]]) -> GoalIndex:
        """``goals``: each goal with its window, in seconds."""
        specs: dict[str, GoalSpec] = {}
        widest_s = 0
        for spec, within_s in goals:
            specs.setdefault(spec.key, spec)
            widest_s = max(widest_s, within_s)
        by_event: defaultdict[str, list[GoalSpec]] = defaultdict(list)
        for spec in specs.values():
            by_event[spec.event].append(spec)
        return cls({kind: tuple(found) for kind, found in by_event.items()}, widest_s * 1000)

    def merged(self, other: GoalIndex) -> GoalIndex:
        if not other.by_event:
            return self
        by_event: dict[str, tuple[GoalSpec, ...]] = dict(self.by_event)
        for kind, specs in other.by_event.items():
            known = {spec.key for spec in by_event.get(kind, ())}
            by_event[kind] = (*by_event.get(kind, ()), *(s for s in specs if s.key not in known))
        return GoalIndex(by_event, max(self.widest_ms, other.widest_ms))


@dataclass(frozen=True, slots=True)
class CompiledRule:
    rule: Rule
    condition: Condition
    occurrence: Condition | None
    source: str
    goal: GoalSpec
    # Whether its decision waits for the partition's event time (rules/ordering.py).
    ordering: Ordering = field(init=False)

    def __post_init__(self) -> None:
        reads: dict[str, frozenset[str]] = {}
        for condition in (self.condition, self.occurrence):
            for variable, fields in (condition.reads if condition is not None else {}).items():
                seen = reads.get(variable, frozenset())
                reads[variable] = ALL if ALL in (seen, fields) else seen | fields
        object.__setattr__(self, "ordering", ordering(self.rule, reads))


@dataclass(frozen=True)
class RuleSet:
    """Enabled rules, indexed so that an event costs only the rules it can concern."""

    rules: tuple[CompiledRule, ...]
    on_event: dict[str, tuple[CompiledRule, ...]] = field(default_factory=dict)
    arming: dict[str, tuple[CompiledRule, ...]] = field(default_factory=dict)
    cancelling: dict[str, tuple[CompiledRule, ...]] = field(default_factory=dict)
    scheduled: tuple[CompiledRule, ...] = ()
    # Derived once, here: the rule stage asks for them batch after batch.
    by_id: dict[str, CompiledRule] = field(init=False)
    event_types: frozenset[str] = field(init=False)  # what the rule stage looks at at all
    absence_ids: frozenset[str] = field(init=False)
    # By event type: the on-event rules decided on arrival, however far behind their
    # partition is read (rules/ordering.py).
    on_arrival: dict[str, tuple[CompiledRule, ...]] = field(init=False)
    goals: GoalIndex = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_id", {entry.rule.id: entry for entry in self.rules})
        types = frozenset(self.on_event) | frozenset(self.arming) | frozenset(self.cancelling)
        object.__setattr__(self, "event_types", types)
        absence = frozenset(r.rule.id for group in self.arming.values() for r in group)
        object.__setattr__(self, "absence_ids", absence)
        arrival = {
            kind: tuple(rule for rule in rules if rule.ordering.on_arrival)
            for kind, rules in self.on_event.items()
        }
        object.__setattr__(self, "on_arrival", {k: v for k, v in arrival.items() if v})
        goals = GoalIndex.of(
            (entry.goal, entry.rule.goal.within_s) for entry in self.rules if entry.rule.enabled
        )
        object.__setattr__(self, "goals", goals)

    @classmethod
    def of(cls, compiled: Iterable[CompiledRule]) -> RuleSet:
        everything = tuple(sorted(compiled, key=lambda c: c.rule.id))
        on_event: defaultdict[str, list[CompiledRule]] = defaultdict(list)
        arming: defaultdict[str, list[CompiledRule]] = defaultdict(list)
        cancelling: defaultdict[str, list[CompiledRule]] = defaultdict(list)
        scheduled: list[CompiledRule] = []
        for entry in everything:
            if not entry.rule.enabled:
                continue
            when = entry.rule.when
            if when.event is not None:
                on_event[when.event].append(entry)
            elif when.absence is not None:
                arming[when.absence.after].append(entry)
                cancelling[when.absence.missing].append(entry)
            else:
                scheduled.append(entry)
        return cls(
            rules=everything,
            on_event={k: tuple(v) for k, v in on_event.items()},
            arming={k: tuple(v) for k, v in arming.items()},
            cancelling={k: tuple(v) for k, v in cancelling.items()},
            scheduled=tuple(scheduled),
        )

    def get(self, rule_id: str) -> CompiledRule | None:
        return self.by_id.get(rule_id)

    def event_rule(self, rule_id: str) -> CompiledRule | None:
        """The enabled on-event rule of that id: what a put-off decision is taken for."""
        entry = self.get(rule_id)
        if entry is None or not entry.rule.enabled or entry.rule.kind != "event":
            return None
        return entry

    def absence_rule(self, rule_id: str) -> CompiledRule | None:
        """The enabled absence rule of that id: what a due timer fires for, if anything."""
        entry = self.get(rule_id)
        if entry is None or not entry.rule.enabled or entry.rule.kind != "absence":
            return None
        return entry


def load_rules(folder: Path, samples: Samples) -> RuleSet:
    """Every ``*.yaml`` under ``folder``; raises RuleSetError listing all problems."""
    compiled = load_folder(
        folder, lambda path: compile_rule_file(path, samples), lambda entry: entry.rule.id, "rule"
    )
    return RuleSet.of(compiled)


def load_folder(
    folder: Path,
    compile_file: Callable[[Path], tuple[T | None, list[RuleProblem]]],
    id_of: Callable[[T], str],
    what: str,
) -> list[T]:
    """Every ``*.yaml`` of ``folder`` compiled, ids unique; raises RuleSetError listing every
    problem: nothing of a folder with a problem is used."""
    if not folder.is_dir():
        raise RuleSetError([RuleProblem(str(folder), 1, "no such folder")])
    compiled: list[T] = []
    problems: list[RuleProblem] = []
    first_file_of: dict[str, str] = {}
    for path in sorted(folder.glob("*.yaml")):
        entry, found = compile_file(path)
        problems.extend(found)
        if entry is None:
            continue
        earlier = first_file_of.setdefault(id_of(entry), str(path))
        if earlier != str(path):
            reason = f"{what} id {id_of(entry)!r} is already taken by {earlier}"
            problems.append(RuleProblem(str(path), 1, reason))
        else:
            compiled.append(entry)
    if problems:
        raise RuleSetError(problems)
    return compiled


def read_mapping(
    path: Path | str, what: str, text: str | None = None
) -> tuple[dict[str, object], dict[YamlPath, int]] | list[RuleProblem]:
    """A YAML file holding one mapping, with the line of every key; or what is wrong.
    ``text``: the file's text, read already (``path`` then only names it)."""
    source = str(path)
    try:
        data, lines = load_with_lines(
            Path(path).read_text(encoding="utf-8") if text is None else text
        )
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        problem = getattr(exc, "problem", None) or str(exc)
        return [RuleProblem(source, line, f"not valid YAML: {problem}")]
    except (OSError, UnicodeDecodeError) as exc:
        return [RuleProblem(source, 1, f"cannot read: {exc}")]
    if not isinstance(data, dict):
        return [RuleProblem(source, 1, f"a {what} file holds one mapping (id, version, …)")]
    return data, lines


M = TypeVar("M", bound=BaseModel)


def read_model(
    path: Path | str, model: type[M], what: str, text: str | None = None
) -> tuple[M, dict[YamlPath, int]] | list[RuleProblem]:
    """A YAML file as ``model``, with the line of every key; or every problem in it."""
    read = read_mapping(path, what, text)
    if isinstance(read, list):
        return read
    data, lines = read
    try:
        return model.model_validate(data), lines
    except ValidationError as exc:
        return validation_problems(exc, str(path), lines)


def compile_rule_file(
    path: Path, samples: Samples
) -> tuple[CompiledRule | None, list[RuleProblem]]:
    source = str(path)
    read = read_model(path, Rule, "rule")
    if isinstance(read, list):
        return None, read
    rule, lines = read
    problems: list[RuleProblem] = []
    condition = compile_condition(rule.condition, ("if",), source, lines, problems)
    occurrence = (
        compile_condition(rule.occurrence, ("occurrence",), source, lines, problems)
        if rule.occurrence is not None
        else None
    )
    goal: GoalSpec | None = None
    try:
        goal = GoalSpec.of(rule.goal)
        goal.condition.check(samples(rule.goal.event))
    except ConditionError as exc:
        problems.append(RuleProblem(source, lines.get(("goal", "if"), 1), f"goal.if: {exc}"))
    if condition is not None:
        for event_type in _listened_types(rule):
            try:
                condition.check(samples(event_type))
            except ConditionError as exc:
                for_what = f" (on {event_type})" if event_type else ""
                problems.append(RuleProblem(source, lines.get(("if",), 1), f"if{for_what}: {exc}"))
                break
    if problems or condition is None or goal is None:
        return None, problems
    return CompiledRule(rule, condition, occurrence, source, goal), []


def _listened_types(rule: Rule) -> list[str | None]:
    if rule.when.event is not None:
        return [rule.when.event]
    if rule.when.absence is not None:
        return [rule.when.absence.after]
    return [None]


def compile_condition(
    text: str,
    path: tuple[str, ...],
    source: str,
    lines: dict[YamlPath, int],
    problems: list[RuleProblem],
) -> Condition | None:
    try:
        return Condition(text)
    except ConditionError as exc:
        problems.append(RuleProblem(source, lines.get(path, 1), f"{path[0]}: {exc}"))
        return None


def validation_problems(
    exc: ValidationError, source: str, lines: dict[YamlPath, int]
) -> list[RuleProblem]:
    return [
        RuleProblem(source, line_of(lines, tuple(error["loc"])), _reason(error))
        for error in exc.errors()
    ]


def _reason(error: ErrorDetails) -> str:
    where = ".".join(str(part) for part in error["loc"] if not str(part)[:1].isupper())
    message = str(error["msg"])
    if error["type"] == "extra_forbidden":
        message = "unknown field"
    elif error["type"] == "literal_error" and "channels" in where:
        message = f"unknown channel: {message}"
    message = message.removeprefix("Value error, ")
    return f"{where}: {message}" if where else message
