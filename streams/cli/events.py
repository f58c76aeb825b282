"""Commands that put events in: publish a file, simulate storefronts, export the contract."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

import click

from crmstream.settings import Settings
from streams.cli.progress import progress

pass_settings = click.make_pass_decorator(Settings)

# Exit statuses of `publish` and `import`, also in their --help.
EXIT_BAD_INPUT = 1
EXIT_NOT_DELIVERED = 3


def _lines(source: BinaryIO) -> Iterator[tuple[int, bytes]]:
    for number, line in enumerate(source, 1):
        stripped = line.strip()
        if stripped:
            yield number, stripped


@click.command()
@click.argument("file", type=click.File("rb"))
@click.option("--strict", is_flag=True, help="Send nothing if any line is bad.")
@click.option(
    "--hash-contacts",
    is_flag=True,
    help="Send phone numbers and e-mail addresses as their keyed hashes "
    "(CRMSTREAM_PRIVACY_HASH_KEY), never in clear.",
)
@pass_settings
def publish(settings: Settings, file: BinaryIO, strict: bool, hash_contacts: bool) -> None:
    """Validate and publish a JSON Lines FILE of events ('-' for standard input).

    Every line is validated first and every bad line is reported with its number
    and reason. Exit status: 0 all sent; 1 some lines bad (the good ones were sent,
    unless --strict); 3 the broker did not take them all.

    The event topics keep what is sent for their retention (7 days): with
    --hash-contacts a phone number or e-mail address goes as the keyed hash the
    engine keeps anyway, and never reaches Kafka in clear.
    """
    from schemas.decode import Decoder, Rejected  # noqa: PLC0415
    from storefront.publisher import Publisher  # noqa: PLC0415 -- keeps --help fast

    decoder = Decoder(max_bytes=settings.ingest.max_event_bytes)
    not_after = decoder.not_after(datetime.now(UTC))
    good: list[bytes] = []
    bad = 0
    for number, line in _lines(file):
        result = decoder.decode(line, None, None, not_after)
        if isinstance(result, Rejected):
            bad += 1
            click.echo(f"line {number}: {result.reason.value}: {result.message}", err=True)
        else:
            good.append(line)
    if bad and strict:
        click.echo(f"{bad} bad line(s); --strict: nothing sent", err=True)
        sys.exit(EXIT_BAD_INPUT)
    with Publisher(settings, hash_contacts=hash_contacts) as publisher:
        for line in progress(good, "publishing"):
            publisher.publish_json(line)
    finish(publisher.report.delivered, publisher.report.failed, publisher.report.errors, bad)


def finish(delivered: int, failed: int, errors: list[str], bad: int) -> None:
    click.echo(f"sent {delivered}, bad {bad}, not delivered {failed}")
    for error in errors[:10]:
        click.echo(f"  delivery failed: {error}", err=True)
    if failed:
        sys.exit(EXIT_NOT_DELIVERED)
    if bad:
        sys.exit(EXIT_BAD_INPUT)


@click.command()
@click.option("--seed", default=42, show_default=True, help="Same seed, same events.")
@click.option("--count", type=click.IntRange(min=1), help="Send this many events, then stop.")
@click.option("--rate", type=click.FloatRange(min=0.1), help="Events per second (live pace).")
@click.option("--customers", default=200, show_default=True, help="Customers per shop.")
@click.option(
    "--start",
    type=click.DateTime(formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"]),
    help="Date the history from here (UTC) instead of ending it now.",
)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write JSON Lines.")
@pass_settings
def simulate(
    settings: Settings,
    seed: int,
    count: int | None,
    rate: float | None,
    customers: int,
    start: datetime | None,
    out: Path | None,
) -> None:
    """Realistic storefront traffic: to the event topics, or to a JSON Lines file.

    With --count alone it writes past history as fast as it can. That history ends now
    (its newest event is dated this moment) and reaches back as far as the count needs:
    a day for 1,000 events, about two weeks for 20,000, with 200 customers per shop
    (fewer customers, longer). --start dates it from that moment (UTC) onwards instead.

    With --rate it keeps that pace, each event dated as it is sent, until --count or
    Ctrl-C.
    """
    from storefront.publisher import Publisher, encode  # noqa: PLC0415
    from storefront.simulator import SimulationConfig, Simulator, ending_at  # noqa: PLC0415
    from streams.cli.pacing import Pacer  # noqa: PLC0415

    if count is None and rate is None:
        raise click.UsageError("say how much: --count N, --rate R, or both")
    if start is not None and rate is not None:
        raise click.UsageError("--start dates past history; --rate dates each event as sent")
    config = SimulationConfig(seed=seed, customers_per_shop=customers, live=rate is not None)
    if start is not None:
        config = replace(config, start=start.replace(tzinfo=UTC))
    elif count is not None and rate is None:
        config = ending_at(config, count, datetime.now(UTC))
    events = Simulator(config).events(count)
    pacer = Pacer(rate)
    if out is not None:
        written = 0
        with out.open("wb") as sink:
            for event in progress(events, "writing", total=count):
                sink.write(encode(event) + b"\n")
                written += 1
                pacer.wait(written)
        click.echo(f"wrote {written} events to {out}")
        return
    with Publisher(settings) as publisher:
        for sent, event in enumerate(progress(events, "publishing", total=count), 1):
            publisher.publish(event)
            pacer.wait(sent)
    finish(publisher.report.delivered, publisher.report.failed, publisher.report.errors, 0)


@click.group()
def schemas() -> None:
    """The event, trigger and segment change contract as JSON Schema."""


@schemas.command("export")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
def schemas_export(directory: Path) -> None:
    """Write one JSON Schema (2020-12) per event type, the union and the trigger to DIRECTORY."""
    from schemas.export import export_schemas  # noqa: PLC0415

    directory.mkdir(parents=True, exist_ok=True)
    documents = export_schemas()
    for name, document in documents.items():
        text = json.dumps(document, indent=2, ensure_ascii=False, sort_keys=True) + "\n"
        (directory / name).write_text(text, encoding="utf-8")
    click.echo(f"wrote {len(documents)} schemas to {directory}")
