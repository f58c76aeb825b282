"""`crmstream segments SHOP [SEGMENT]`: segment sizes, or one segment's members."""

from __future__ import annotations

import asyncio
import sys

import click
from rich.console import Console
from rich.table import Table

from crmstream.settings import Settings
from streams.cli.names import shop_name

pass_settings = click.make_pass_decorator(Settings)


@click.command()
@click.argument("shop", callback=shop_name)
@click.argument("segment", required=False)
@click.option("--check", "check_only", is_flag=True, help="Only check the segment files.")
@click.option("--limit", default=100, show_default=True, help="Members to list.")
@click.option("--cursor", help="List members after this customer id.")
@pass_settings
def segments(
    settings: Settings,
    shop: str,
    segment: str | None,
    check_only: bool,
    limit: int,
    cursor: str | None,
) -> None:
    """Print the live size of every segment of SHOP, or the members of SEGMENT.

    Sizes are counters kept as memberships change: this answers at once for any number
    of customers.
    """
    from handlers.keys import Keys  # noqa: PLC0415 -- keeps --help fast
    from handlers.redis_client import connect  # noqa: PLC0415
    from handlers.segments.read import MemberPage, SegmentReader  # noqa: PLC0415
    from handlers.triggers.samples import rule_samples  # noqa: PLC0415
    from rules.folders import segments_folder  # noqa: PLC0415
    from rules.loader import RuleSetError  # noqa: PLC0415
    from rules.segment_set import load_segments  # noqa: PLC0415

    folder = segments_folder(settings.segments)
    try:
        loaded = load_segments(folder, rule_samples(None))
    except RuleSetError as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        click.secho(f"{len(exc.problems)} problem(s) in {folder}", fg="red", err=True)
        sys.exit(1)
    if check_only:
        click.echo(f"{len(loaded.segments)} segment(s) in {folder}: all usable")
        return

    async def read() -> dict[str, int] | MemberPage:
        client = connect(settings.redis)
        try:
            reader = SegmentReader(client, Keys(settings.redis.key_prefix))
            if segment is not None:
                return await reader.members(shop, segment, cursor, limit)
            return await reader.sizes(shop)
        finally:
            await client.aclose()

    result = asyncio.run(read())
    if isinstance(result, MemberPage):
        for member in result.members:
            click.echo(member)
        if result.cursor:
            click.echo(f"… more: --cursor {result.cursor}", err=True)
        return
    table = Table("segment", "members", "rechecked by time", "if", title=f"segments of {shop}")
    for entry in loaded.segments:
        spec = entry.segment
        table.add_row(
            spec.id, f"{result.get(spec.id, 0):,}", "yes" if entry.timed else "", spec.condition
        )
    for gone in sorted(set(result) - {entry.segment.id for entry in loaded.segments}):
        table.add_row(f"{gone} (no longer defined)", f"{result[gone]:,}", "", "")
    Console().print(table)
