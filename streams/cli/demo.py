"""`crmstream demo`: the whole engine on one machine, with live output.

Local stack up, topics, a worker in a child process, the storefront simulator
publishing at a steady rate, and live tables of what the worker has taken in and
of the triggers its rules fire, each with its reason.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import click
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

from crmstream.admin import create_topics
from crmstream.settings import Settings
from crmstream.topics import EVENT_STREAMS
from devstack import Stack
from handlers.flow import DUPLICATE, events_taken, flow_counts
from handlers.journeys.stats import journey_stats_of
from handlers.keys import Keys
from handlers.redis_client import SyncRedisClient, connect_sync
from rules import PACKAGED_JOURNEYS, PACKAGED_SHOP_CONFIGS
from storefront.publisher import Publisher, stream_of
from storefront.simulator import CROSS_BORDER_REGIONS, SHOPS, SimulationConfig, Simulator
from streams.cli.child_worker import settings_env, start_worker, stop_worker
from streams.cli.local_stack import stack_settings, with_local_hash_key
from streams.cli.pacing import Pacer
from streams.cli.trigger_feed import TriggerFeed

pass_settings = click.make_pass_decorator(Settings)


def demo_traffic(seed: int, id_salt: int, clock: Callable[[], datetime] | None = None) -> Simulator:
    """The demo's storefronts: a cross-border shop's customers, live (each event dated by
    ``clock`` as it leaves, the wall clock unless a test fixes it)."""
    config = SimulationConfig(seed=seed, live=True, id_salt=id_salt, regions=CROSS_BORDER_REGIONS)
    return Simulator(config if clock is None else replace(config, clock=clock))


class _Traffic(threading.Thread):
    """Publishes simulated events at a steady rate until told to stop."""

    def __init__(self, settings: Settings, rate: float, seed: int) -> None:
        super().__init__(name="demo-traffic", daemon=True)
        self.settings = settings
        self.rate = rate
        self.seed = seed
        self.published: Counter[str] = Counter()
        self.stopping = threading.Event()

    def run(self) -> None:
        # The seed shapes the traffic; the salt gives this run ids of its own, so a second
        # demo sends new events, not repeats of the first one's.
        events = demo_traffic(self.seed, secrets.randbits(128)).events()
        pacer = Pacer(self.rate)
        with Publisher(self.settings) as publisher:
            for sent, event in enumerate(events, 1):
                if self.stopping.is_set():
                    break
                publisher.publish(event)
                self.published[stream_of(event["type"])] += 1
                pacer.wait(sent)


def _table(
    published: Counter[str], flow: Counter[str], dead: Counter[str], worker_state: str
) -> Table:
    table = Table(title=f"crmstream demo — worker {worker_state}   (Ctrl-C to stop)")
    table.add_column("event stream")
    table.add_column("published", justify="right")
    table.add_column("taken in by the worker", justify="right")
    table.add_column("duplicates", justify="right")
    table.add_column("dead letters", justify="right")
    for stream in EVENT_STREAMS:
        repeats = flow[DUPLICATE + stream]
        table.add_row(
            stream,
            str(published[stream]),
            str(flow[stream] - repeats),
            str(repeats),
            str(dead[stream]),
        )
    repeats = sum(flow[DUPLICATE + stream] for stream in EVENT_STREAMS)
    table.add_row(
        "[bold]all",
        f"[bold]{sum(published.values())}",
        f"[bold]{events_taken(flow) - repeats}",
        f"[bold]{repeats}",
        f"[bold]{sum(dead.values())}",
    )
    return table


def _segments(redis: SyncRedisClient, settings: Settings) -> str:
    """Live segment sizes of the simulated shops, summed, on one line."""
    keys = Keys(settings.redis.key_prefix)
    pipe = redis.pipeline(transaction=False)
    for shop in SHOPS:
        for base in keys.trigger_shards():
            pipe.hgetall(keys.segment_sizes(base, shop))
    sizes: Counter[str] = Counter()
    for reply in pipe.execute():
        sizes.update({segment.decode(): int(size) for segment, size in reply.items()})
    shown = " · ".join(f"{segment} {size}" for segment, size in sorted(sizes.items()))
    return f"segments (live): {shown or 'none yet'}"


def _journeys(redis: SyncRedisClient, settings: Settings) -> tuple[str, int]:
    """The pack journeys of the simulated shops on one line, and how many entered."""
    keys = Keys(settings.redis.key_prefix)
    pipe = redis.pipeline(transaction=False)
    for base in keys.trigger_shards():
        pipe.hgetall(keys.journey_stats(base))
        pipe.hgetall(keys.rule_stats(base))
    replies = pipe.execute()
    found = journey_stats_of(list(zip(replies[::2], replies[1::2], strict=True)), None)
    shown = [
        f"{entry.journey} {entry.entered} in ("
        + ", ".join(f"{step} {n}" for step, n in (+entry.at).items())
        + ")"
        for entry in found
    ]
    return "journeys: " + ("; ".join(shown) or "none entered yet"), sum(
        entry.entered for entry in found
    )


def demo_shops(settings: Settings, folder: Path) -> Settings:
    """The demo's shops run the pack journeys, unless a shop folder of the user's is set."""
    if settings.profiles.shop_config_dir is not None:
        return settings
    folder.mkdir(parents=True, exist_ok=True)
    journeys = ", ".join(sorted(path.stem for path in PACKAGED_JOURNEYS.glob("*.yaml")))
    default = (PACKAGED_SHOP_CONFIGS / "default.yaml").read_text(encoding="utf-8")
    kept = [line for line in default.splitlines() if not line.startswith("journeys:")]
    text = "\n".join([*kept, f"journeys: [{journeys}]  # the demo runs the pack journeys", ""])
    (folder / "default.yaml").write_text(text, encoding="utf-8")
    profiles = settings.profiles.model_copy(update={"shop_config_dir": folder})
    return settings.model_copy(update={"profiles": profiles})


def _held(redis: SyncRedisClient, settings: Settings) -> int:
    """Triggers waiting for the end of their customers' quiet hours."""
    keys = Keys(settings.redis.key_prefix)
    pipe = redis.pipeline(transaction=False)
    for base in keys.trigger_shards():
        pipe.zcard(keys.held(base))
    return sum(pipe.execute())


@click.command()
@click.option("--rate", default=50.0, show_default=True, help="Simulated events per second.")
@click.option("--seed", default=7, show_default=True)
@click.option("--duration", type=float, help="Stop after this many seconds (default: Ctrl-C).")
@pass_settings
def demo(settings: Settings, rate: float, seed: int, duration: float | None) -> None:
    """Run stack, worker and simulated storefronts together, and show the flow live."""
    console = Console()
    stack = stack_settings()
    log = stack.state_dir / "demo" / "worker.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    # Client libraries log retries while the broker warms up; they belong in a file, not on
    # the live table.
    logging.basicConfig(filename=log.with_name("demo.log"), level=logging.INFO)
    for status in Stack(settings, stack).up():
        console.print(status.describe())
    # A first `stack up` makes the key only now; the worker gets it with the rest of these.
    settings = with_local_hash_key(settings, stack)
    settings = demo_shops(settings, log.parent / "shops")
    create_topics(settings)
    redis = connect_sync(settings.redis)
    flow_key = Keys(settings.redis.key_prefix).flow
    # Counts from earlier runs stay in Redis; the table shows this run's.
    baseline = flow_counts(redis.hgetall(flow_key))
    console.print(f"worker log: {log}")
    worker = start_worker(log, settings_env(settings))
    traffic = _Traffic(settings, rate, seed)
    traffic.start()
    feed = TriggerFeed(settings)
    feed.start()
    started = time.monotonic()
    flow: Counter[str] = Counter()
    try:
        with Live(console=console, refresh_per_second=4) as live:
            while duration is None or time.monotonic() - started < duration:
                if worker.poll() is not None:
                    raise click.ClickException(
                        f"the worker exited ({worker.returncode}); see {log}"
                    )
                flow = flow_counts(redis.hgetall(flow_key)) - baseline
                state = "running" if flow else "starting (joining the group)"
                held = _held(redis, settings)
                table = _table(traffic.published, flow, feed.dead_letters, state)
                table.caption = _segments(redis, settings) + "\n" + _journeys(redis, settings)[0]
                live.update(Group(table, feed.table(held)))
                time.sleep(0.25)
    except KeyboardInterrupt:
        pass
    finally:
        traffic.stopping.set()
        feed.stopping.set()
        traffic.join(timeout=30)
        feed.join(timeout=10)
        stop_worker(worker)
    console.print(_segments(redis, settings), soft_wrap=True)
    journeys_line, entered = _journeys(redis, settings)
    console.print(journeys_line, soft_wrap=True)
    repeats = sum(flow[DUPLICATE + stream] for stream in EVENT_STREAMS)
    console.print(
        f"published {sum(traffic.published.values())}, "
        f"taken in {events_taken(flow) - repeats}, duplicates {repeats}, "
        f"dead letters {sum(feed.dead_letters.values())}, "
        f"triggers {sum(feed.per_rule.values())}, held for quiet hours {_held(redis, settings)}, "
        f"journeys entered {entered}",
        soft_wrap=True,  # one line, however narrow the terminal: scripts read it
    )
    redis.close()
    if not flow:
        raise click.ClickException(f"no event reached the worker; see {log}")
