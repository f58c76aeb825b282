"""Journey files: the problems `journeys check` names, how steps lead on, and the pack."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from handlers.triggers.samples import rule_samples
from rules.folders import PACKAGED_JOURNEYS
from rules.journey_graph import edges
from rules.journey_loader import compile_journey_file, load_journeys
from rules.journey_model import EXIT
from rules.loader import RuleSetError
from streams.cli import cli

BROKEN = Path(__file__).parents[1] / "data" / "broken_journeys"

# file → (line, what the reason must say)
EXPECTED = {
    "branch-to-missing-step.yaml": (11, "step 'bought' goes to 'thank-you', which no step is"),
    "cel-error.yaml": (9, "steps.0.wait_for.if: CEL syntax error"),
    "cel-type-in-branch.yaml": (11, "steps.1.branch.cases.0.if (on customer.registered): type"),
    "duplicate-step-id.yaml": (10, "step id 'welcome' is already taken"),
    "keyed-without-key.yaml": (4, "a key is given exactly when reentry is keyed"),
    "loop-without-wait.yaml": (6, "a loop with no wait in it: ask → check → ask"),
    "never-reached.yaml": (10, "step 'orphan' is never reached"),
    "not-yaml.yaml": (5, "not valid YAML"),
    "unknown-step-type.yaml": (8, "unknown step type 'sleep'"),
    "wait-beyond-lifetime.yaml": (10, "'hibernate' waits longer than the journey's lifetime"),
}


def test_every_broken_journey_is_named_with_its_line_and_reason() -> None:
    with pytest.raises(RuleSetError) as caught:
        load_journeys(BROKEN, rule_samples)
    found = {Path(p.file).name: p for p in caught.value.problems}
    assert set(found) == set(EXPECTED)
    assert len(caught.value.problems) == len(EXPECTED)  # one problem each, nothing more
    for name, (line, reason) in EXPECTED.items():
        assert found[name].line == line, found[name]
        assert reason in found[name].reason, found[name]


def test_journeys_check_exits_non_zero_and_lists_each_problem() -> None:
    result = CliRunner().invoke(cli, ["journeys", "check", str(BROKEN)])
    assert result.exit_code == 1
    for name, (line, _) in EXPECTED.items():
        assert f"{name}:{line}:" in result.output


def test_one_bad_file_keeps_the_whole_folder_out(tmp_path: Path) -> None:
    for name in ("new-member-onboarding.yaml", "post-purchase-care.yaml"):
        (tmp_path / name).write_bytes((PACKAGED_JOURNEYS / name).read_bytes())
    (tmp_path / "loop.yaml").write_bytes((BROKEN / "loop-without-wait.yaml").read_bytes())
    with pytest.raises(RuleSetError) as caught:
        load_journeys(tmp_path, rule_samples)
    assert [Path(p.file).name for p in caught.value.problems] == ["loop.yaml"]


def test_the_shipped_journeys_load_and_are_listed() -> None:
    loaded = load_journeys(PACKAGED_JOURNEYS, rule_samples)
    assert sorted(loaded.by_id) == ["new-member-onboarding", "post-purchase-care"]
    assert [j.journey.id for j in loaded.entering["order.delivered"]] == ["post-purchase-care"]
    assert set(loaded.awaited) == {"order.placed", "order.refunded", "survey.answered"}
    for command in ("check", "list"):
        result = CliRunner().invoke(cli, ["journeys", command])
        assert result.exit_code == 0, result.output


def _journey(tmp_path: Path, steps: str, entry: str = "customer.registered") -> Path:
    path = tmp_path / "j.yaml"
    path.write_text(
        f"id: j\nversion: 1\ndescription: d\nentry: {{event: {entry}}}\nsteps:\n{steps}",
        encoding="utf-8",
    )
    return path


def test_a_loop_that_waits_is_a_journey(tmp_path: Path) -> None:
    steps = (
        "  - {id: ask, send: {channels: [sms], template: ask}}\n"
        "  - {id: answer, wait_for: {event: survey.answered, timeout: 2d, timed_out: ask}}\n"
        "  - {id: done, exit: answered}\n"
    )
    compiled, problems = compile_journey_file(_journey(tmp_path, steps), rule_samples)
    assert problems == []
    assert compiled is not None
    journey = compiled.journey
    # A wait_for goes on when the event comes, and where it says when it does not.
    assert [e.target for e in edges(journey, 1)] == ["done", "ask"]
    assert [e.target for e in edges(journey, 0)] == ["answer"]
    assert edges(journey, 2) == []


def test_split_paths_and_outcomes_lead_where_they_say(tmp_path: Path) -> None:
    steps = (
        "  - id: pick\n"
        "    split: {paths: [{weight: 90, go: offer}, {weight: 10, holdout: true}]}\n"
        "  - id: offer\n"
        "    send:\n"
        "      channels: [sms]\n"
        "      template: offer\n"
        "      outcomes: {capped: later, no_consent: exit}\n"
        "  - {id: later, wait: {until: '10:00'}}\n"
    )
    compiled, problems = compile_journey_file(_journey(tmp_path, steps), rule_samples)
    assert problems == []
    assert compiled is not None
    journey = compiled.journey
    assert [e.target for e in edges(journey, 0)] == ["offer", EXIT]
    assert [e.target for e in edges(journey, 1)] == ["later", EXIT, "later"]
    assert [e.target for e in edges(journey, 2)] == [EXIT]  # past the last step: out
    assert journey.steps[2].waits_s == 86_400


@pytest.mark.parametrize(
    ("steps", "entry", "reason"),
    [
        ("  - {id: exit, wait: 1d}\n", None, "'exit' is where customers leave"),
        ("  - {id: a, wait: 1d, send: {channels: [sms], template: t}}\n", None, "exactly one"),
        ("  - {id: a, wait: 0s}\n", None, "longer than zero"),
        (
            "  - id: a\n    split: {paths: [{weight: 1, go: a, holdout: true}, {weight: 1}]}\n",
            None,
            "either goes to a step or is the holdout",
        ),
        ("  - {id: a, wait: 1d}\n", "order.teleported", "unknown event type"),
    ],
)
def test_a_step_or_entry_that_cannot_work_is_refused(
    tmp_path: Path, steps: str, entry: str | None, reason: str
) -> None:
    path = _journey(tmp_path, steps, entry or "customer.registered")
    compiled, problems = compile_journey_file(path, rule_samples)
    assert compiled is None
    assert any(reason in problem.reason for problem in problems), problems
