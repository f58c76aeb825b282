"""``crmstream bench``: the benchmark suite (bench/) against the running stack.

The benchmarks ship with the source, not with the installed package: the command line
adds this command when it runs from a checkout (streams/cli/__init__.py)."""

from __future__ import annotations

from pathlib import Path

import click

from bench.labels import SCENARIOS


@click.command("bench")
@click.argument(
    "scenarios", nargs=-1, required=True, type=click.Choice([*SCENARIOS, "all", "report"])
)
@click.option("--events", default=100_000, show_default=True, help="Events per throughput run.")
@click.option("--runs", default=3, show_default=True, help="Timed runs of each contender.")
@click.option(
    "--seconds", default=30.0, show_default=True, help="latency: seconds of load per level."
)
@click.option(
    "--max-rate",
    type=float,
    help="latency: the rate its loads are shares of [default: the last `full` result].",
)
@click.option(
    "--against",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="ingest/profiles/full/latency: also run another checkout's workers (its .venv), in turn.",
)
@click.option(
    "--journeys",
    is_flag=True,
    help="ingest/profiles/full: also run the workers with the pack journeys on, in turn.",
)
def bench(  # noqa: PLR0917 -- click passes one argument per option
    scenarios: tuple[str, ...],
    events: int,
    runs: int,
    seconds: float,
    max_rate: float | None,
    against: Path | None,
    journeys: bool,
) -> None:
    """Measure crmstream against its ceiling and its peers; write bench/results and BENCHMARKS.md.

    \b
    ingest    read and validate only
    profiles  validate and update profiles
    full      profiles, the rule pack and segments (and a py-spy profile)
    latency   event → trigger at 25%, 50% and 75% of the `full` rate
    scaling   1 vs 2 workers, one Redis vs a Redis Cluster; 10k, 100k, 1M customers
    memory    Redis bytes per profile; worker RSS from 100k to 1M events
    all       every one of them, in that order (about three quarters of an hour)
    report    rewrite BENCHMARKS.md and the plot from the results alone

    Needs the stack (`crmstream stack up`); every scenario uses topics and Redis keys
    of its own and removes them afterwards.
    """
    from bench import report, suite  # noqa: PLC0415 (the suite is only loaded to run it)

    if scenarios == ("report",):
        for path in report.write():
            if path is not None:
                click.echo(f"wrote {path}")
        return
    chosen = SCENARIOS if "all" in scenarios else scenarios
    if runs < 1 or events < 1:
        raise click.BadParameter("--runs and --events must be at least 1")
    options = suite.Options(
        events=events, runs=runs, seconds=seconds, max_rate=max_rate, against=against,
        journeys=journeys,
    )  # fmt: skip
    for path in suite.run(chosen, options):
        click.echo(f"wrote {path}")
