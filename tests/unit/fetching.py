"""A consumer reading a partition's topics at their own pace, for the clocks' property tests
(test_clock.py, test_clock_allowance.py): records reach the broker at given moments, and
each poll's fetch answers for some topics and hands over part of what each holds."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

TopicPartition = tuple[str, int]
Arrival = tuple[int, str, int, int]  # (at the broker, topic, record timestamp, event time)


@dataclass
class Fetched:
    """One poll's word, as the consumer gives it to the sink."""

    newest: dict[TopicPartition, int] = field(default_factory=dict)
    written: dict[TopicPartition, int] = field(default_factory=dict)
    late: dict[TopicPartition, int] = field(default_factory=dict)  # record ts - event time
    lagging: dict[TopicPartition, int | None] = field(default_factory=dict)
    heard: dict[TopicPartition, int] = field(default_factory=dict)


class FetchingConsumer:
    def __init__(self, topics: tuple[str, ...], arrivals: list[Arrival]) -> None:
        self._topics = topics
        self._upcoming = sorted(arrivals)
        self._unread: dict[str, list[tuple[int, int]]] = {topic: [] for topic in topics}
        # What the consumer last learnt of each topic (its highwater and the time of the
        # broker's answer): a topic the latest fetch did not cover is reported as it was.
        self._standing: dict[str, tuple[int | None, int]] = dict.fromkeys(topics, (None, 0))

    @property
    def done(self) -> bool:
        return not self._upcoming and not any(self._unread.values())

    def pending(self) -> list[int]:
        """Event times not read yet, on the broker or still on their way."""
        unread = [event for records in self._unread.values() for _, event in records]
        return unread + [event for *_, event in self._upcoming]

    def poll(self, rng: random.Random, now_ms: int) -> Fetched:
        upcoming = self._upcoming
        while upcoming and upcoming[0][0] <= now_ms:
            _, topic, written, event = upcoming.pop(0)
            self._unread[topic].append((written, event))
        fetched = Fetched()
        for topic in rng.sample(self._topics, rng.randint(1, len(self._topics))):
            unread = self._unread[topic]
            taken = unread[: rng.randint(0, len(unread))]
            del unread[: len(taken)]
            if taken:
                fetched.newest[topic, 0] = max(event for _, event in taken)
                fetched.written[topic, 0] = max(written for written, _ in taken)
                fetched.late[topic, 0] = max(written - event for written, event in taken)
            self._standing[topic] = (len(unread), now_ms)
        for topic, (lag, answered) in self._standing.items():
            if lag == 0:
                fetched.heard[topic, 0] = answered
            else:
                fetched.lagging[topic, 0] = lag
        return fetched
