"""What `rules check` and `journeys check` share: every problem of a folder as
file:line: reason, and an exit code a script can go by."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import click


def check_folder(target: Path, load: Callable[[Path], int], what: str) -> None:
    """``load``: loads the folder and says how many it holds, or raises RuleSetError.
    Exits 1 on a problem, after naming each one."""
    from rules.loader import RuleSetError  # noqa: PLC0415 -- keeps --help fast

    try:
        count = load(target)
    except RuleSetError as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        click.secho(f"{len(exc.problems)} problem(s) in {target}", fg="red", err=True)
        sys.exit(1)
    click.echo(f"{count} {what}(s) in {target}: all usable")
