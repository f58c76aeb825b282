"""Live storefront load for the latency benchmark, made before it is offered.

Making an event costs its sender about 20 µs (simulating it, encoding it, checking it as
a storefront's publisher does), and handing it to the producer as much again. On this
two-core machine that time is taken from the worker being measured, as a storefront's own
servers would not take it. So a level's events are made and checked before the level
starts; as each leaves, it is only stamped with the clock (its ``time``: latency is
counted from there) and handed to the producer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import islice
from typing import Final

from crmstream.errors import BenchError
from storefront.publisher import Publisher, encode
from storefront.simulator import SimulationConfig, Simulator

# A time every prepared event carries until it leaves, in the simulator's own form.
_PLACEHOLDER: Final = "2000-01-01T00:00:00.000000Z"
_FIELD: Final = b'"time":"'
_PLACED: Final = _FIELD + _PLACEHOLDER.encode() + b'"'


@dataclass(frozen=True, slots=True)
class Prepared:
    """One event, checked, as its publisher would send it but for its time."""

    topic: str
    key: bytes
    head: bytes  # the JSON up to the value of ``time``
    tail: bytes  # and after it

    def stamped(self, stamp: bytes) -> bytes:
        return self.head + stamp + self.tail


def prepare(publisher: Publisher, count: int, seed: int = 9) -> list[Prepared]:
    """``count`` events of the live simulation, checked by ``publisher`` (a bad one raises
    InvalidEventError, as it would when published) and ready for ``publish_raw``."""
    simulation = Simulator(SimulationConfig(seed=seed, customers_per_shop=2000, live=True))
    not_after = publisher.decoder.not_after(datetime.now(UTC))
    load: list[Prepared] = []
    for event in islice(simulation.events(), count):
        value = encode({**event, "time": _PLACEHOLDER})
        valid = publisher.decoder.require(value, not_after)
        topic, key, sent = publisher.outgoing(valid, value)
        head, placed, tail = sent.partition(_PLACED)
        if not placed or _PLACED in tail:
            raise BenchError(f"event {valid.id}: its time is not where it can be stamped")
        load.append(Prepared(topic, key, head + _FIELD, b'"' + tail))
    return load


def stamp_now() -> bytes:
    """The clock in the simulator's form of an event's time (RFC 3339, UTC, "Z"), always
    to the microsecond, as a storefront's servers write it."""
    return datetime.now(UTC).isoformat(timespec="microseconds")[:26].encode() + b"Z"
