"""Operating commands: the local stack, topics, the worker, simulated traffic."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click
import orjson

from crmstream.settings import Settings
from crmstream.stack import ServiceState, Stack

pass_settings = click.make_pass_decorator(Settings)


@click.group()
def stack() -> None:
    """The local Kafka (KRaft) and Redis, without Docker."""


@stack.command("up")
@click.option("--aof", is_flag=True, help="Persist Redis with an append-only file (default: none).")
@pass_settings
def stack_up(settings: Settings, aof: bool) -> None:
    """Start Kafka and Redis unless something already answers at their addresses."""
    if aof:
        stack_settings = settings.stack.model_copy(update={"redis_appendonly": True})
        settings = settings.model_copy(update={"stack": stack_settings})
    click.echo(f"state in {settings.stack.state_dir}")
    for status in Stack(settings).up():
        click.echo(status.describe())


@stack.command("down")
@pass_settings
def stack_down(settings: Settings) -> None:
    """Stop what `stack up` started; services we did not start are left alone."""
    for status in Stack(settings).down():
        click.echo(status.describe())


@stack.command("status")
@pass_settings
def stack_status(settings: Settings) -> None:
    """Say what answers where; exit 1 unless both services answer."""
    statuses = Stack(settings).status()
    for status in statuses:
        click.echo(status.describe())
    healthy = {ServiceState.RUNNING, ServiceState.EXTERNAL}
    if not all(status.state in healthy for status in statuses):
        click.get_current_context().exit(1)


@click.group()
def topics() -> None:
    """The topics of the design (events, dead letters, triggers, segments)."""


@topics.command("create")
@pass_settings
def topics_create(settings: Settings) -> None:
    """Create the missing topics; existing ones are left as they are."""
    from crmstream.admin import create_topics  # noqa: PLC0415 -- keeps `--help` fast

    for outcome in create_topics(settings):
        verb = "created" if outcome.created else "exists "
        click.echo(f"{verb} {outcome.name} ({outcome.partitions} partitions)")


@click.command()
@click.option("--loglevel", default="info", show_default=True)
@pass_settings
def worker(settings: Settings, loglevel: str) -> None:
    """Run one worker of the consumer group until stopped (SIGTERM or Ctrl-C)."""
    from streams.worker import run_worker  # noqa: PLC0415 -- Faust loads only for the worker

    run_worker(settings, loglevel=loglevel)


@click.command()
@click.option("--seed", default=42, show_default=True, help="Same seed, same events.")
@click.option("--count", type=click.IntRange(min=1), help="Send this many events, then stop.")
@click.option("--rate", type=click.FloatRange(min=0.1), help="Events per second (live pace).")
@click.option("--customers", default=200, show_default=True, help="Customers per shop.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write JSON Lines.")
@pass_settings
def simulate(
    settings: Settings,
    seed: int,
    count: int | None,
    rate: float | None,
    customers: int,
    out: Path | None,
) -> None:
    """Realistic storefront traffic: to the event topics, or to a JSON Lines file."""
    from crmstream.client.publisher import Publisher  # noqa: PLC0415
    from crmstream.client.simulator import SimulationConfig, Simulator  # noqa: PLC0415

    if count is None and rate is None:
        raise click.UsageError("say how much: --count N, --rate R, or both")
    events = Simulator(SimulationConfig(seed=seed, customers_per_shop=customers)).events(count)
    pacer = Pacer(rate)
    if out is not None:
        written = 0
        with out.open("wb") as sink:
            for written, event in enumerate(events, 1):
                sink.write(orjson.dumps(event) + b"\n")
                pacer.wait(written)
        click.echo(f"wrote {written} events to {out}")
        return
    with Publisher(settings) as publisher:
        for sent, event in enumerate(events, 1):
            publisher.publish(event)
            pacer.wait(sent)
    report = publisher.report
    click.echo(f"delivered {report.delivered}, failed {report.failed}")
    if report.failed:
        for error in report.errors[:10]:
            click.echo(f"  {error}", err=True)
        sys.exit(1)


class Pacer:
    """Sleeps just enough to keep a steady rate; does nothing without one."""

    def __init__(self, rate: float | None) -> None:
        self.rate = rate
        self.started = time.monotonic()

    def wait(self, sent: int) -> None:
        if self.rate is None:
            return
        ahead = sent / self.rate - (time.monotonic() - self.started)
        if ahead > 0:
            time.sleep(ahead)
