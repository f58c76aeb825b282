"""How a journey's steps fit together: where each one leads, and what cannot run.

A journey is refused, never half-run, when a step leads to a step that does not exist,
a step can never be reached, the steps form a loop with no wait in it (a customer would
go round it forever in one instant), or a wait is longer than the journey's lifetime (the
customer would be taken out before it ends). Each problem names the YAML path it is
about, for the loader to turn into a line.
"""

from __future__ import annotations

from dataclasses import dataclass

from rules.journey_model import EXIT, Journey, Step
from rules.yaml_lines import Path as YamlPath


@dataclass(frozen=True, slots=True)
class Edge:
    target: str  # a step id, or EXIT
    where: YamlPath  # where the file names it (the step itself for "the one after")


def edges(journey: Journey, index: int) -> list[Edge]:
    """Where step ``index`` may send a customer on, in the order the file gives them."""
    step = journey.steps[index]
    here: YamlPath = ("steps", index)
    after = journey.steps[index + 1].id if index + 1 < len(journey.steps) else EXIT
    onward = Edge(step.next, (*here, "next")) if step.next is not None else Edge(after, here)
    if step.exit is not None:
        return []
    if step.send is not None:
        named = [
            Edge(target, (*here, "send", "outcomes", outcome))
            for outcome, target in step.send.outcomes.items()
        ]
        return [*named, onward]
    if step.wait_for is not None:
        wait_for = step.wait_for
        matched = (
            Edge(wait_for.matched, (*here, "wait_for", "matched"))
            if wait_for.matched is not None
            else onward
        )
        return [matched, Edge(wait_for.timed_out, (*here, "wait_for", "timed_out"))]
    if step.branch is not None:
        branch = step.branch
        cases = [
            Edge(case.go, (*here, "branch", "cases", n, "go"))
            for n, case in enumerate(branch.cases)
        ]
        otherwise = (
            Edge(branch.otherwise, (*here, "branch", "else"))
            if branch.otherwise is not None
            else onward
        )
        return [*cases, otherwise]
    if step.split is not None:
        return [
            Edge(EXIT if path.go is None else path.go, (*here, "split", "paths", n, "go"))
            for n, path in enumerate(step.split.paths)
        ]
    return [onward]  # a wait


def _holds(step: Step) -> bool:
    return step.wait is not None or step.wait_for is not None


def problems(journey: Journey) -> list[tuple[YamlPath, str]]:
    """Every way the steps do not fit together, with where the file says it."""
    found: list[tuple[YamlPath, str]] = []
    index_of: dict[str, int] = {}
    for index, step in enumerate(journey.steps):
        if index_of.setdefault(step.id, index) != index:
            found.append((("steps", index, "id"), f"step id {step.id!r} is already taken"))
    graph: dict[str, list[str]] = {}
    for index, step in enumerate(journey.steps):
        targets = graph.setdefault(step.id, [])
        for edge in edges(journey, index):
            if edge.target != EXIT and edge.target not in index_of:
                reason = f"step {step.id!r} goes to {edge.target!r}, which no step is"
                found.append((edge.where, reason))
            else:
                targets.append(edge.target)
        held = step.waits_s
        if held is not None and held > journey.lifetime_s:
            found.append(
                (
                    ("steps", index, step.kind),
                    f"step {step.id!r} waits longer than the journey's lifetime "
                    f"({journey.lifetime}): customers would be taken out first",
                )
            )
    if found:
        return found  # reach and loops mean little on a graph with holes in it
    reached = _reached(journey.steps[0].id, graph)
    for index, step in enumerate(journey.steps):
        if step.id not in reached:
            found.append((("steps", index, "id"), f"step {step.id!r} is never reached"))
    loop = _instant_loop(journey, graph)
    if loop:
        first = index_of[loop[0]]
        found.append(
            (
                ("steps", first, "id"),
                "a loop with no wait in it: " + " → ".join([*loop, loop[0]])
                + " (a customer would go round it forever at once)",
            )
        )  # fmt: skip
    return found


def _reached(start: str, graph: dict[str, list[str]]) -> set[str]:
    reached = {start}
    frontier = [start]
    while frontier:
        for target in graph.get(frontier.pop(), ()):
            if target != EXIT and target not in reached:
                reached.add(target)
                frontier.append(target)
    return reached


def _instant_loop(journey: Journey, graph: dict[str, list[str]]) -> list[str]:
    """A cycle through steps that hold nobody (no wait, no wait_for), or []."""
    instant = {step.id for step in journey.steps if not _holds(step)}
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        path.append(node)
        for target in graph.get(node, ()):
            if target not in instant:
                continue
            if state.get(target) == 1:
                return path[path.index(target) :]
            if target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[node] = 2
        return []

    for step in journey.steps:
        if step.id in instant and step.id not in state and (cycle := visit(step.id)):
            return cycle
    return []
