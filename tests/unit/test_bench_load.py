"""The latency benchmark's load, made before it is offered: once stamped, each event is
the one its publisher would have sent, with the time it leaves."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from bench.load import prepare, stamp_now
from crmstream.settings import Settings
from schemas.events import Envelope
from storefront.publisher import Publisher, encode, partition_key
from storefront.simulator import SimulationConfig, Simulator


@pytest.fixture
def publisher() -> Publisher:
    # No broker is needed: nothing is produced, only checked.
    return Publisher(Settings())


def test_a_stamped_event_is_the_simulated_one_at_the_time_it_leaves(
    publisher: Publisher,
) -> None:
    count, seed = 400, 5
    load = prepare(publisher, count, seed=seed)
    simulated = Simulator(SimulationConfig(seed=seed, customers_per_shop=2000, live=True))
    expected = [event for _, event in zip(range(count), simulated.events(), strict=False)]
    assert len(load) == count
    stamp = b"2026-12-07T11:14:39.700563Z"
    not_after = publisher.decoder.not_after(datetime.now(UTC))
    for prepared, event in zip(load, expected, strict=True):
        value = prepared.stamped(stamp)
        sent = orjson.loads(value)
        assert sent == orjson.loads(encode({**event, "time": stamp.decode()}))
        valid = publisher.decoder.require(value, not_after)
        assert isinstance(valid, Envelope)
        assert valid.time == datetime(2026, 12, 7, 11, 14, 39, 700563, tzinfo=UTC)
        assert prepared.topic == publisher.topics.event(valid.stream)
        assert prepared.key == partition_key(valid)


def test_the_stamp_is_the_clock_in_the_simulators_form() -> None:
    before = datetime.now(UTC)
    stamp = stamp_now()
    after = datetime.now(UTC)
    assert len(stamp) == len(b"2026-12-07T11:14:39.700563Z")
    assert stamp.endswith(b"Z")
    read = datetime.fromisoformat(stamp.decode().replace("Z", "+00:00"))
    assert before <= read <= after
