"""A customer's rights: `crmstream forget` (to be forgotten, through the same stream as
every other change to them, so that each worker applies it in its turn) and `crmstream
export` (to know what is held)."""

from __future__ import annotations

import asyncio
import sys
import uuid
from datetime import UTC, datetime
from typing import Any

import click
import orjson

from crmstream.settings import Settings
from streams.cli.events import finish
from streams.cli.names import customer_name, shop_name

pass_settings = click.make_pass_decorator(Settings)


@click.command()
@click.argument("shop", callback=shop_name)
@click.argument("customer", callback=customer_name)
@pass_settings
def forget(settings: Settings, shop: str, customer: str) -> None:
    """Erase CUSTOMER of SHOP: publishes customer.erasure_requested.

    The workers then remove the profile, the segment memberships, the trigger state,
    the triggers held or not yet relayed, the timers and the aliases of merged
    devices; a tombstone keyed by a keyed hash of shop and customer keeps late events
    from bringing the profile back. What was already published to Kafka (triggers,
    segment changes, dead letters) ages out with the topics' retention.
    Exit status: 0 published; 3 the broker did not take it.
    """
    from storefront.publisher import Publisher  # noqa: PLC0415

    event = {
        "specversion": "1.0",
        "id": f"forget-{uuid.uuid4()}",
        "source": "crmstream/forget",
        "type": "customer.erasure_requested",
        "time": datetime.now(UTC).isoformat(),
        "shop": shop,
        "subject": customer,
        "data": {},
    }
    with Publisher(settings) as publisher:
        publisher.publish(event)
    report = publisher.report
    if report.delivered:
        click.echo(f"erasure of {customer} ({shop}) published as {event['id']}")
    finish(report.delivered, report.failed, report.errors, 0)


@click.command("export")
@click.argument("shop", callback=shop_name)
@click.argument("customer", callback=customer_name)
@pass_settings
def export(settings: Settings, shop: str, customer: str) -> None:
    """Print everything held about CUSTOMER of SHOP as one JSON document: facts and
    consents, the profile, segments, the triggers decided within the fired window and
    the last decisions with their reasons. Exit status 1 when nothing is held."""
    document = asyncio.run(_export(settings, shop, customer))
    if document is None:
        click.echo(f"nothing held about customer {customer} of shop {shop}", err=True)
        sys.exit(1)
    click.echo(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode())


async def _export(settings: Settings, shop: str, customer: str) -> dict[str, Any] | None:
    from handlers.customer_export import export_customer  # noqa: PLC0415
    from handlers.keys import Keys  # noqa: PLC0415
    from handlers.profile.read import ProfileReader  # noqa: PLC0415
    from handlers.redis_client import connect  # noqa: PLC0415
    from handlers.segments.read import SegmentReader  # noqa: PLC0415
    from handlers.shop_configs import ShopConfigs  # noqa: PLC0415
    from handlers.triggers.decisions import DecisionReader  # noqa: PLC0415
    from rules.folders import shop_configs_folder  # noqa: PLC0415

    client = connect(settings.redis)
    keys = Keys(settings.redis.key_prefix)
    try:
        return await export_customer(
            ProfileReader(client, keys, ShopConfigs(shop_configs_folder(settings.profiles))),
            SegmentReader(client, keys),
            DecisionReader(client, keys),
            shop,
            customer,
        )
    finally:
        await client.aclose()
