"""`crmstream profile SHOP CUSTOMER`: one customer's live profile, readable."""

from __future__ import annotations

import asyncio
import sys
from datetime import datetime
from typing import Any

import click
import orjson
from rich.console import Console

from crmstream.settings import Settings
from streams.cli.names import customer_name, shop_name

pass_settings = click.make_pass_decorator(Settings)


@click.command()
@click.argument("shop", callback=shop_name)
@click.argument("customer", callback=customer_name)
@click.option("--as-of", "as_of", help="Windows and scores at this RFC 3339 time (default: now).")
@click.option("--json", "as_json", is_flag=True, help="Plain JSON, for scripts.")
@pass_settings
def profile(settings: Settings, shop: str, customer: str, as_of: str | None, as_json: bool) -> None:
    """Print the live profile of CUSTOMER of SHOP (exit 1 if there is none)."""
    from handlers.keys import Keys  # noqa: PLC0415 -- keeps --help fast
    from handlers.profile.read import ProfileReader  # noqa: PLC0415
    from handlers.redis_client import connect  # noqa: PLC0415
    from handlers.segments.read import SegmentReader  # noqa: PLC0415
    from handlers.shop_configs import ShopConfigs  # noqa: PLC0415
    from rules.folders import shop_configs_folder  # noqa: PLC0415
    from schemas.times import epoch_ms  # noqa: PLC0415

    moment = None
    if as_of:
        try:
            moment = epoch_ms(datetime.fromisoformat(as_of))
        except (ValueError, TypeError) as exc:
            raise click.BadParameter(f"not an RFC 3339 time with a zone: {as_of}") from exc

    async def read() -> dict[str, Any] | None:
        client = connect(settings.redis)
        try:
            keys = Keys(settings.redis.key_prefix)
            reader = ProfileReader(
                client, keys, ShopConfigs(shop_configs_folder(settings.profiles))
            )
            document = await reader.read(shop, customer, moment)
            if document is not None:
                document["segments"] = await SegmentReader(client, keys).of_customer(shop, customer)
            return document
        finally:
            await client.aclose()

    document = asyncio.run(read())
    if document is None:
        click.echo(f"no profile for customer {customer} of shop {shop}", err=True)
        sys.exit(1)
    if as_json:
        click.echo(orjson.dumps(document).decode())
    else:
        Console().print_json(orjson.dumps(document).decode())


@click.command()
@click.option("--shop", callback=shop_name, help="Only this shop's profiles (default: every shop).")
@click.option(
    "--reset-triggers",
    is_flag=True,
    help="Also delete every shop's trigger machinery: outboxes, held triggers, timers, "
    "cooldowns, caps, stats and segment memberships. Stop the workers first.",
)
@click.option("--yes", is_flag=True, help="Do not ask before --reset-triggers.")
@pass_settings
def replay(settings: Settings, shop: str | None, reset_triggers: bool, yes: bool) -> None:
    """Rebuild profiles from the event topics, from the beginning.

    The profiles are wiped first (tombstones of erased customers stay), then every
    event up to the topics' current end is applied as the live worker would. The
    trigger machinery is left alone unless --reset-triggers is given (every shop
    only: a shard holds several shops' state).
    """
    if reset_triggers:
        if shop is not None:
            raise click.UsageError("--reset-triggers resets every shop; leave out --shop")
        if not yes and not sys.stdin.isatty():
            raise click.UsageError("--reset-triggers deletes state: confirm with --yes")
        if not yes:
            click.confirm(
                "Delete every shop's outboxes, held triggers, timers, cooldowns, stats and "
                "segment memberships?",
                abort=True,
            )
    from rich.progress import Progress  # noqa: PLC0415

    from streams.replay import replay as run_replay  # noqa: PLC0415

    with Progress(transient=True, disable=not sys.stderr.isatty()) as bar:
        task = bar.add_task("replaying", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        report = asyncio.run(run_replay(settings, shop, progress, with_triggers=reset_triggers))
    click.echo(
        f"wiped {report.wiped_keys} keys; read {report.read} events: applied {report.applied}, "
        f"duplicates {report.duplicates}, invalid {report.skipped_invalid}, "
        f"other shops {report.skipped_other_shops}"
    )
