"""A consumer poll's word on the event topics, split by partition: what each partition's
clock (clock.py) is told."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(slots=True)
class Poll:
    """One poll's word on one partition, by topic."""

    newest: dict[str, int] = field(default_factory=dict)
    written: dict[str, int] = field(default_factory=dict)
    lagging: dict[str, int | None] = field(default_factory=dict)
    heard: dict[str, int] = field(default_factory=dict)
    late: dict[str, int] = field(default_factory=dict)


def by_partition(
    newest: Mapping[tuple[str, int], int],
    behind: Mapping[tuple[str, int], int | None],
    written: Mapping[tuple[str, int], int],
    heard: Mapping[tuple[str, int], int],
    late: Mapping[tuple[str, int], int],
) -> dict[int, Poll]:
    """A poll's word on every topic partition, split by partition."""
    polls: defaultdict[int, Poll] = defaultdict(Poll)
    for (topic, partition), at in newest.items():
        polls[partition].newest[topic] = at
    for (topic, partition), at in written.items():
        polls[partition].written[topic] = at
    for (topic, partition), lag in behind.items():
        polls[partition].lagging[topic] = lag
    for (topic, partition), at in heard.items():
        polls[partition].heard[topic] = at
    for (topic, partition), ms in late.items():
        polls[partition].late[topic] = ms
    return polls
