"""A real worker process takes in every published event, exactly once."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from crmstream.admin import create_topics
from crmstream.settings import Settings
from handlers.flow import flow_counts
from handlers.keys import Keys
from handlers.redis_client import connect_sync
from storefront.publisher import Publisher
from storefront.simulator import SimulationConfig, Simulator
from tests.support import backlog_read, eventually, running_worker

# Which topic each type travels on, as the contract lists them (docs/DESIGN.md §1, "The
# event contract"): written out, so that the expectation does not come from the code.
CATALOGUE = {
    "browse": ("item.viewed", "item.favorited", "search.performed"),
    "cart": ("cart.item_added", "cart.item_removed", "cart.cleared"),
    "order": (
        "order.placed", "order.paid", "order.shipped", "order.delivered", "order.cancelled",
        "order.refunded",
    ),
    "review": ("review.posted",),
    "customer": (
        "customer.registered", "customer.updated", "customer.identified", "survey.answered",
        "customer.erasure_requested",
    ),
}  # fmt: skip
STREAM_OF = {kind: stream for stream, kinds in CATALOGUE.items() for kind in kinds}


def test_worker_counts_every_published_event(settings: Settings, tmp_path: Path) -> None:
    create_topics(settings)
    events = list(Simulator(SimulationConfig(seed=3, customers_per_shop=50)).events(3_000))
    expected = Counter(STREAM_OF[event["type"]] for event in events)
    with Publisher(settings) as publisher:
        for event in events:
            publisher.publish(event)

    with running_worker(settings, tmp_path / "worker.log") as worker:

        def read_to_the_end() -> bool:
            assert worker.poll() is None, (tmp_path / "worker.log").read_text()[-3000:]
            return backlog_read(settings)

        # Once the group has committed every partition to its end, every event has been
        # counted, and a double count would be there to see.
        eventually(read_to_the_end, 90, "every event partition read to its end")
    redis = connect_sync(settings.redis)
    taken = flow_counts(redis.hgetall(Keys(settings.redis.key_prefix).flow))
    redis.close()

    assert taken == expected
