"""The ``crmstream`` command line.

Commands import what they need when they run, so that ``crmstream stack status``
does not pay for loading Faust.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import click
from pydantic import ValidationError

from crmstream import __version__
from crmstream.errors import CrmStreamError
from crmstream.settings import Settings
from devstack.settings import StackSettings
from streams.cli.console import console
from streams.cli.customers import import_customers
from streams.cli.demo import demo
from streams.cli.events import publish, schemas, simulate
from streams.cli.journeys import journeys
from streams.cli.local_stack import keep_stack_settings, with_local_hash_key
from streams.cli.ops import stack, topics, worker
from streams.cli.privacy import export, forget
from streams.cli.profiles import profile, replay
from streams.cli.rules import rules
from streams.cli.segments import segments
from streams.cli.tokens import tokens


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="crmstream")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """crmstream: live customer profiles and rule-based triggers on Kafka and Redis.

    Configuration comes from CRMSTREAM_* environment variables (see README).
    """
    try:
        stack = StackSettings()
        # A development machine's commands hash with the key its stack made, unless one is
        # configured; the engine's settings alone never look for it (local_stack.py).
        ctx.obj = with_local_hash_key(Settings(), stack)
    except ValidationError as exc:
        raise click.ClickException(f"invalid configuration: {exc}") from exc
    keep_stack_settings(ctx, stack)


for command in (
    stack, topics, worker, publish, simulate, import_customers, profile, replay, schemas,
    demo, rules, journeys, segments, tokens, forget, export, console,
):  # fmt: skip
    cli.add_command(command)


def _add_benchmarks() -> None:
    """``crmstream bench`` from a checkout: the benchmarks (bench/) are not installed, and
    import this package, not the other way round; so they are found by name, beside it."""
    checkout = Path(__file__).resolve().parents[2]
    if not (checkout / "bench" / "cli.py").is_file():
        return
    if str(checkout) not in sys.path:
        sys.path.append(str(checkout))
    cli.add_command(importlib.import_module("bench.cli").bench)


_add_benchmarks()


def main() -> None:
    try:
        result = cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except CrmStreamError as exc:
        click.secho(f"error: {exc}", fg="red", err=True)
        sys.exit(1)
    # Without standalone mode, click hands back ctx.exit(code) as the return value.
    sys.exit(result if isinstance(result, int) else 0)
