"""20,000 mixed events through the real broker and worker: the valid reach the sink, the rest
the dead-letter topic with their reason, and nothing else happens."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from crmstream.admin import create_topics
from crmstream.settings import Settings
from crmstream.topics import TopicNames
from handlers.redis_client import connect_sync
from schemas.errors import Reason
from schemas.events import STREAM_OF_TYPE
from storefront.publisher import Publisher, partition_key
from storefront.simulator import SimulationConfig, Simulator
from streams import dead_letters as dlq
from tests.sinks import accepted_key
from tests.support import backlog_read, consume, eventually, running_worker, text, value_bytes

TOTAL = 20_000
PER_KIND = 180  # of each of the 11 ways to be wrong: 1,980 invalid in all


def _spoil(  # noqa: PLR0911 -- one return per way to be wrong
    kind: Reason, event: dict[str, Any], n: int
) -> tuple[str, bytes | None, bytes]:
    """A message that is wrong in exactly one way: (stream, key, value)."""
    stream = STREAM_OF_TYPE[event["type"]]
    key = partition_key(event)
    match kind:
        case Reason.NOT_UTF8:
            return stream, key, b"\xff\xfe" + str(n).encode()
        case Reason.NOT_JSON:
            return stream, key, b"{broken json " + str(n).encode()
        case Reason.NOT_OBJECT:
            return stream, key, orjson.dumps([n, "not", "an", "object"])
        case Reason.OVERSIZED:
            return stream, key, orjson.dumps({**event, "padding": "x" * 70_000})
        case Reason.UNKNOWN_TYPE:
            return stream, key, orjson.dumps({**event, "type": "parcel.lost"})
        case Reason.WRONG_TOPIC:
            other = "order" if stream != "order" else "browse"
            return other, key, orjson.dumps(event)
        case Reason.MISSING_FIELD:
            return stream, key, orjson.dumps({k: v for k, v in event.items() if k != "source"})
        case Reason.INVALID_FIELD:
            return stream, key, orjson.dumps({**event, "time": "yesterday"})
        case Reason.OUT_OF_RANGE:
            zero = {"item_id": "tea", "category": "tea", "qty": 0, "price": "1.00"}
            return "cart", key, orjson.dumps({**event, "type": "cart.item_added", "data": zero})
        case Reason.BAD_KEY:
            return stream, b"someone:else", orjson.dumps(event)
        case Reason.FUTURE_TIME:
            soon = (datetime.now(UTC) + timedelta(days=1)).isoformat()
            return stream, key, orjson.dumps({**event, "time": soon})
    raise AssertionError(kind)


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_valid_to_the_sink_invalid_to_the_dlq_nothing_else(
    base_settings: Settings, namespace: str, tmp_path: Path, settings: Settings
) -> None:
    settings = settings.model_copy(
        update={
            "worker": settings.worker.model_copy(
                update={"event_sink": "tests.sinks:RecordingSink.from_settings"}
            )
        }
    )
    create_topics(settings)
    names = TopicNames.from_settings(settings.topics)
    kinds = list(Reason)
    invalid_count = PER_KIND * len(kinds)
    events = list(Simulator(SimulationConfig(seed=99)).events(TOTAL))
    rng = random.Random(7)
    spoiled_at = set(rng.sample(range(TOTAL), invalid_count))

    expected_valid: set[str] = set()
    expected_reason: dict[bytes, Reason] = {}
    kind_cycle = iter(kinds * PER_KIND)
    with Publisher(settings) as publisher:
        for n, event in enumerate(events):
            if n in spoiled_at:
                kind = next(kind_cycle)
                stream, key, value = _spoil(kind, event, n)
                expected_reason[value] = kind
            else:
                stream, key = STREAM_OF_TYPE[event["type"]], partition_key(event)
                value = orjson.dumps(event)
                expected_valid.add(event["id"])
            publisher.publish_raw(names.event(stream), key, value)
    assert len(expected_reason) == invalid_count

    redis = connect_sync(settings.redis)
    accepted = accepted_key(settings)
    with running_worker(settings, tmp_path / "worker.log") as worker:

        def read_to_the_end() -> bool:
            assert worker.poll() is None, (tmp_path / "worker.log").read_text()[-3000:]
            return backlog_read(settings)

        # Once the group has committed every partition to its end, all it handed over and
        # dead-lettered is in: anything extra would be there to see.
        eventually(read_to_the_end, 150, "every event partition read to its end")
        dead = consume(settings, [names.dlq], count=invalid_count, timeout_s=60)
        handed_over = int(redis.get(accepted + ":count") or 0)
        recorded = {text(member) for member in redis.smembers(accepted)}
    redis.close()

    assert recorded == expected_valid
    assert handed_over == len(expected_valid)
    assert len(dead) == invalid_count
    seen_reasons: dict[bytes, Reason] = {}
    for message in dead:
        headers = {pair[0]: text(pair[1]) for pair in message.headers() or []}
        seen_reasons[value_bytes(message)] = Reason(headers[dlq.REASON])
        assert headers[dlq.MESSAGE]
        assert headers[dlq.SOURCE_TOPIC] in names.events
        assert int(headers[dlq.SOURCE_OFFSET]) >= 0
    assert seen_reasons == expected_reason
