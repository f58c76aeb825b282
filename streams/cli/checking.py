"""What `rules check|backtest` and `journeys check|backtest` share: every problem of a
folder or a file as file:line: reason, and an exit code a script can go by."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console

Report = TypeVar("Report")


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


def backtest_or_exit(run: Coroutine[Any, Any, Report]) -> Report:
    """The backtest's report; for a file that does not check, its problems on stderr, and
    exit 1."""
    from rules.loader import RuleSetError  # noqa: PLC0415 -- keeps --help fast

    try:
        return asyncio.run(run)
    except RuleSetError as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        sys.exit(1)


def print_invalid_lines(console: Console, invalid: Sequence[tuple[int, str]]) -> None:
    """The first lines of the events file that could not be read, by number."""
    for line, reason in invalid[:20]:
        console.print(f"[yellow]line {line}[/]: {reason}")
