"""`crmstream rules check|list|stats|backtest`: checked before they run, measured after."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from crmstream.settings import Settings
from rules.folders import rules_folder
from streams.cli.checking import backtest_or_exit, check_folder, print_invalid_lines
from streams.cli.names import shop_name, until_time

pass_settings = click.make_pass_decorator(Settings)


@click.group()
def rules() -> None:
    """Trigger rules (YAML files, one rule each): check, list, backtest, and their stats."""


def _folder(settings: Settings, folder: Path | None) -> Path:
    return folder if folder is not None else rules_folder(settings.triggers)


@rules.command()
@click.argument("folder", type=click.Path(path_type=Path), required=False)
@pass_settings
def check(settings: Settings, folder: Path | None) -> None:
    """Report every problem in FOLDER (default: the configured rules) as file:line: reason.

    Exit 0 when all rules are usable, 1 otherwise.
    """
    from handlers.triggers.samples import rule_samples  # noqa: PLC0415 -- keeps --help fast
    from rules.loader import load_rules  # noqa: PLC0415

    check_folder(
        _folder(settings, folder), lambda path: len(load_rules(path, rule_samples).rules), "rule"
    )


@rules.command(name="list")
@click.argument("folder", type=click.Path(path_type=Path), required=False)
@pass_settings
def list_rules(settings: Settings, folder: Path | None) -> None:
    """Show the rules in FOLDER: what starts them, their condition, where they go, and
    whether they are decided on arrival or in event-time order (and why)."""
    from handlers.triggers.samples import rule_samples  # noqa: PLC0415 -- keeps --help fast
    from rules.loader import load_rules  # noqa: PLC0415

    loaded = load_rules(_folder(settings, folder), rule_samples)
    table = Table("rule", "v", "on", "if", "channels", "limits", "decided")
    for entry in loaded.rules:
        rule = entry.rule
        when = rule.when
        if when.event:
            on = when.event
        elif when.absence:
            absence = when.absence
            on = f"{absence.after}, no {absence.missing} in {absence.within}"
        else:
            on = f"daily {when.schedule.daily}: {when.schedule.occasion}"  # type: ignore[union-attr]
        limits = rule.limits
        shown = [
            f"cooldown {limits.cooldown}" if limits.cooldown else "",
            f"quiet {limits.quiet_hours.start}-{limits.quiet_hours.end}"
            if limits.quiet_hours
            else "",
            f"holdout {limits.holdout:.0%}" if limits.holdout else "",
            "service" if rule.service else f"priority {rule.priority}",
            f"max age {limits.max_age or '1d'}" if rule.max_age_s else "",
        ]
        table.add_row(
            rule.id + ("" if rule.enabled else " (off)"),
            str(rule.version),
            on,
            rule.condition,
            ", ".join(rule.then.channels),
            ", ".join(part for part in shown if part),
            entry.ordering.describe(),
        )
    Console().print(table)


def _percent(value: object) -> str:
    return "" if value is None else f"{float(value):.1%}"  # type: ignore[arg-type]


@rules.command()
@click.option("--shop", callback=shop_name, help="Only this shop's triggers (default: every shop).")
@click.option("--json", "as_json", is_flag=True, help="Plain JSON, for scripts.")
@pass_settings
def stats(settings: Settings, shop: str | None, as_json: bool) -> None:
    """Per rule: fired, sent, suppressed by reason, held out, converted, and the lift of
    sending over holding out (two-proportion z-test, 95% interval)."""
    import asyncio  # noqa: PLC0415 -- keeps --help fast

    import orjson  # noqa: PLC0415

    from handlers.keys import Keys  # noqa: PLC0415
    from handlers.redis_client import connect  # noqa: PLC0415
    from handlers.triggers.stats import read_rule_stats  # noqa: PLC0415
    from rules.lift import RuleStats  # noqa: PLC0415

    async def read() -> list[RuleStats]:
        client = connect(settings.redis)
        try:
            return await read_rule_stats(client, Keys(settings.redis.key_prefix), shop)
        finally:
            await client.aclose()

    found = [entry.as_dict() for entry in asyncio.run(read())]
    if as_json:
        click.echo(orjson.dumps({"shop": shop, "rules": found}).decode())
        return
    table = Table(
        "rule", "fired", "sent", "suppressed", "held out", "conv. sent", "conv. held out",
        "lift (95% CI)", title=f"rules of {shop}" if shop else "rules, all shops",
    )  # fmt: skip
    for row in found:
        suppressed = row["suppressed"]
        assert isinstance(suppressed, dict)  # noqa: S101 -- as_dict's shape
        ci = row["lift_ci95"]
        lift = (
            f"{float(row['lift']):+.1%} ({float(ci[0]):+.1%} … {float(ci[1]):+.1%})"  # type: ignore[arg-type, index]
            if ci
            else ""
        )
        table.add_row(
            str(row["rule"]), str(row["fired"]), str(row["sent"]),
            ", ".join(f"{k} {v}" for k, v in suppressed.items() if v),
            str(row["holdout"]),
            f"{row['converted']} ({_percent(row['conversion_rate'])})",
            f"{row['converted_holdout']} ({_percent(row['conversion_rate_holdout'])})",
            lift,
        )  # fmt: skip
    Console().print(table)


@rules.command()
@click.argument("rule_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--events",
    "events_file",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Past events, one CloudEvent JSON per line.",
)
@click.option(
    "--until", callback=until_time,
    help="Run timers to this RFC 3339 time, or 'now' (default: last event).",
)  # fmt: skip
@click.option("--sample", default=5, show_default=True, help="Triggers to show with reasons.")
@click.option("--json", "as_json", is_flag=True, help="Plain JSON, for scripts.")
@pass_settings
def backtest(
    settings: Settings,
    rule_file: Path,
    events_file: Path,
    until: datetime | None,
    sample: int,
    as_json: bool,
) -> None:
    """What RULE_FILE would have fired over past events, sending nothing.

    The live engine runs it, on a scratch key space in Redis removed afterwards.
    """
    import orjson  # noqa: PLC0415 -- keeps --help fast

    from handlers.backtest import backtest as run_backtest  # noqa: PLC0415

    report = backtest_or_exit(run_backtest(settings, rule_file, events_file, until, sample))
    summary = report.summary()
    if as_json:
        click.echo(orjson.dumps(summary).decode())
        return
    console = Console()
    print_invalid_lines(console, report.invalid)
    console.print(
        f"[bold]{report.rule}[/] over {report.events:,} events: "
        f"[bold]{report.triggers:,}[/] triggers for {report.customers:,} customers "
        f"({report.held_out:,} held out, {report.held_quiet_hours:,} held for quiet hours); "
        "guards held back "
        + ", ".join(f"{count:,} by {reason}" for reason, count in report.suppressed.items())
        + f"; {report.waiting:,} timers still running; {report.invalid_lines:,} invalid lines"
    )
    for trigger in summary["sample"]:
        data = trigger["data"]
        console.print(
            f"\n{trigger['time']}  {trigger['shop']}/{trigger['subject']}  {data['channel']}"
        )
        for matched in data["reason"]:
            console.print(f"  • {matched['condition']}  {matched['values']}")
