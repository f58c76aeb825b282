"""`crmstream journeys check|list|stats|backtest`: journey files checked, and tried on past
events, before they are published; and where the customers are in them."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from crmstream.settings import Settings
from rules.folders import journeys_folder
from streams.cli.checking import backtest_or_exit, check_folder, print_invalid_lines
from streams.cli.names import shop_name, until_time

pass_settings = click.make_pass_decorator(Settings)


@click.group()
def journeys() -> None:
    """Journeys (YAML files, one journey each): multi-step care, checked and listed."""


def _folder(settings: Settings, folder: Path | None) -> Path:
    return folder if folder is not None else journeys_folder(settings.triggers)


@journeys.command()
@click.argument("folder", type=click.Path(path_type=Path), required=False)
@pass_settings
def check(settings: Settings, folder: Path | None) -> None:
    """Report every problem in FOLDER (default: the configured journeys) as
    file:line: reason. Exit 0 when all journeys are usable, 1 otherwise."""
    from handlers.triggers.samples import rule_samples  # noqa: PLC0415 -- keeps --help fast
    from rules.journey_loader import load_journeys  # noqa: PLC0415

    check_folder(
        _folder(settings, folder),
        lambda path: len(load_journeys(path, rule_samples).journeys),
        "journey",
    )


@journeys.command(name="list")
@click.argument("folder", type=click.Path(path_type=Path), required=False)
@pass_settings
def list_journeys(settings: Settings, folder: Path | None) -> None:
    """Show the journeys in FOLDER: how customers enter, the steps, what takes them out."""
    from handlers.triggers.samples import rule_samples  # noqa: PLC0415 -- keeps --help fast
    from rules.journey_loader import load_journeys  # noqa: PLC0415
    from rules.journey_model import Step  # noqa: PLC0415

    def shown(step: Step) -> str:
        if step.send is not None:
            return f"send {step.send.template}"
        if step.wait is not None:
            return f"wait {step.wait if isinstance(step.wait, str) else step.wait.until}"
        if step.wait_for is not None:
            return f"wait for {step.wait_for.event} ≤ {step.wait_for.timeout}"
        return step.kind

    loaded = load_journeys(_folder(settings, folder), rule_samples)
    table = Table("journey", "v", "priority", "enters on", "steps", "exits on")
    for entry in loaded.journeys:
        journey = entry.journey
        enters = f"{journey.entry.event} ({journey.entry.reentry})"
        table.add_row(
            journey.id + ("" if journey.enabled else " (off)"),
            str(journey.version),
            f"{journey.priority} {journey.category}",
            enters,
            " → ".join(shown(step) for step in journey.steps),
            ", ".join(each.event for each in journey.exit_on),
        )
    Console().print(table)


@journeys.command()
@click.option("--shop", callback=shop_name, help="Only this shop's (default: every shop).")
@click.option("--json", "as_json", is_flag=True, help="Plain JSON, for scripts.")
@pass_settings
def stats(settings: Settings, shop: str | None, as_json: bool) -> None:
    """Per journey and version: entered, held at each step now, left by reason, and what
    became of each step's sends."""
    import asyncio  # noqa: PLC0415 -- keeps --help fast

    import orjson  # noqa: PLC0415

    from handlers.journeys.stats import JourneyStats, read_journey_stats  # noqa: PLC0415
    from handlers.keys import Keys  # noqa: PLC0415
    from handlers.redis_client import connect  # noqa: PLC0415

    async def read() -> list[JourneyStats]:
        client = connect(settings.redis)
        try:
            return await read_journey_stats(client, Keys(settings.redis.key_prefix), shop)
        finally:
            await client.aclose()

    found = asyncio.run(read())
    if as_json:
        rows = [entry.as_dict() for entry in found]
        click.echo(orjson.dumps({"shop": shop, "journeys": rows}).decode())
        return
    table = Table("journey", "v", "entered", "now at", "left", "sends",
                  title=f"journeys of {shop}" if shop else "journeys, all shops")  # fmt: skip
    for entry in found:
        table.add_row(
            entry.journey, str(entry.version), str(entry.entered),
            ", ".join(f"{step} {n}" for step, n in (+entry.at).items()),
            ", ".join(f"{reason} {n}" for reason, n in entry.exited.items()),
            "; ".join(
                f"{step}: " + ", ".join(f"{k} {v}" for k, v in outcomes.items())
                for step, outcomes in sorted(entry.sends.items())
            ),
        )  # fmt: skip
    Console().print(table)


@journeys.command()
@click.argument("journey_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--events", "events_file", required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Past events, one CloudEvent JSON per line.",
)  # fmt: skip
@click.option(
    "--until", callback=until_time,
    help="Run waits to this RFC 3339 time, or 'now' (default: last event).",
)  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Plain JSON, for scripts.")
@pass_settings
def backtest(
    settings: Settings,
    journey_file: Path,
    events_file: Path,
    until: datetime | None,
    as_json: bool,
) -> None:
    """What JOURNEY_FILE would have done over past events, sending nothing: entries, each
    step's count and sends, exits by reason, the goal. Every shop of the events runs it.

    The live engine runs it, on a scratch key space in Redis removed afterwards.
    """
    import orjson  # noqa: PLC0415 -- keeps --help fast

    from handlers.journeys.backtest import backtest_journey  # noqa: PLC0415

    report = backtest_or_exit(backtest_journey(settings, journey_file, events_file, until))
    summary = report.summary()
    if as_json:
        click.echo(orjson.dumps(summary).decode())
        return
    console = Console()
    print_invalid_lines(console, report.lines.invalid)
    goal = summary["goal"]
    console.print(
        f"[bold]{summary['journey']}[/] v{summary['version']} over {summary['events']:,} "
        f"events: [bold]{summary['entered']:,}[/] entered, "
        f"{sum(summary['still_in'].values()):,} still in at the end; goal reached "
        f"{goal.get('reached', 0):,} of {goal.get('treated', 0):,}; "
        f"{summary['invalid_lines']:,} invalid lines"
    )
    table = Table("step", "type", "came this far", "still here", "sends")
    for step in summary["steps"]:
        table.add_row(
            step["id"], step["kind"], "" if step["count"] is None else str(step["count"]),
            str(step["now_at"]), ", ".join(f"{k} {v}" for k, v in step["sends"].items()),
        )  # fmt: skip
    console.print(table)
    for reason, count in summary["exited"].items():
        console.print(f"left: {reason}: {count:,}")
