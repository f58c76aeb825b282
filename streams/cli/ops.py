"""Operating commands: the local stack, topics, the worker."""

from __future__ import annotations

import click

from crmstream.settings import Settings
from devstack import ServiceState, Stack
from streams.cli.local_stack import stack_settings

pass_settings = click.make_pass_decorator(Settings)


@click.group()
def stack() -> None:
    """The local Kafka (KRaft) and Redis, without Docker."""


@stack.command("up")
@click.option("--aof", is_flag=True, help="Persist Redis with an append-only file (the default).")
@click.option(
    "--secure",
    is_flag=True,
    help="Also a broker with SASL_SSL (SCRAM-SHA-512) and a Redis with TLS and ACL users, "
    "on ports of their own; their client settings go to <state>/secure/env.",
)
@click.option(
    "--redis-cluster",
    is_flag=True,
    help="Also a Redis Cluster of three primaries and three replicas (ports 7000-7005); "
    "point the engine at it with CRMSTREAM_REDIS_CLUSTER=true "
    "CRMSTREAM_REDIS_URL=redis://127.0.0.1:7000/0.",
)
@pass_settings
def stack_up(settings: Settings, aof: bool, secure: bool, redis_cluster: bool) -> None:
    """Start Kafka and Redis unless something already answers at their addresses."""
    local = stack_settings()
    if aof:
        local = local.model_copy(update={"redis_appendonly": True})
    click.echo(f"state in {local.state_dir}")
    for status in Stack(settings, local, secure=secure, redis_cluster=redis_cluster).up():
        click.echo(status.describe())
    if secure:
        from devstack.secure import secure_home  # noqa: PLC0415

        click.echo(f"clients of the secured services: source {secure_home(local) / 'env'}")


@stack.command("down")
@pass_settings
def stack_down(settings: Settings) -> None:
    """Stop what `stack up` started; services we did not start are left alone."""
    for status in Stack(settings, stack_settings()).down():
        click.echo(status.describe())


@stack.command("status")
@pass_settings
def stack_status(settings: Settings) -> None:
    """Say what answers where; exit 1 unless both services answer."""
    statuses = Stack(settings, stack_settings()).status()
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
    """Create the missing topics. Existing event and dead-letter topics take the retention
    set now, and event topics stamp records with the broker's append time (how late
    storefronts' writes are is measured from it); partition counts are left as they are."""
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
