"""Counts per epoch minute gathered into the overview's time buckets: every minute of the
last hour, every hour of the last day, each one there even when nothing happened in it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Series:
    """Counts in buckets of equal length, oldest first; the last is the bucket ``now`` is
    in, so it is still filling."""

    bucket_s: int
    first_start_s: int  # epoch seconds the oldest bucket starts at
    counts: tuple[int, ...]

    @property
    def total(self) -> int:
        """What a chart's title says: the sum of its bars, nothing else."""
        return sum(self.counts)

    @property
    def starts_s(self) -> tuple[int, ...]:
        return tuple(self.first_start_s + n * self.bucket_s for n in range(len(self.counts)))


def last_hour_by_minute(minutes: Mapping[int, int], now_s: float) -> Series:
    """The 60 minutes ending with the current one."""
    return _bucketed(minutes, now_s, bucket_minutes=1, buckets=60)


def last_day_by_hour(minutes: Mapping[int, int], now_s: float) -> Series:
    """The 24 hours ending with the current one (epoch hours, as the counts are kept)."""
    return _bucketed(minutes, now_s, bucket_minutes=60, buckets=24)


def _bucketed(
    minutes: Mapping[int, int], now_s: float, bucket_minutes: int, buckets: int
) -> Series:
    """Counts per epoch minute summed into ``buckets`` buckets; a minute outside them (older,
    or ahead of this clock) is left out of the bars and so of the total too."""
    last = int(now_s) // 60 // bucket_minutes
    first = last - buckets + 1
    counts = [0] * buckets
    for minute, count in minutes.items():
        index = minute // bucket_minutes - first
        if 0 <= index < buckets:
            counts[index] += count
    start_s = first * bucket_minutes * 60
    return Series(bucket_s=bucket_minutes * 60, first_start_s=start_s, counts=tuple(counts))
