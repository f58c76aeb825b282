"""`crmstream forget`: a customer's right to be forgotten, through the same stream as
every other change to them, so that each worker applies it in its turn."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import click

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
    from crmstream.client.publisher import Publisher  # noqa: PLC0415

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
