"""Where a time chart's ticks go and what they say, in the shop's local time: every 10
minutes over the last hour, every 3 hours over the last day, a date where a day begins."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from console.buckets import Series
from console.i18n import month_day_label, translator

# Bucket length → how far apart the ticks are; any other length gets a tick every 10.
_TICK_EVERY_S: Final = {60: 600, 3600: 3 * 3600}
_FALLBACK_ZONE: Final = "UTC"


@dataclass(frozen=True, slots=True)
class Tick:
    index: int  # the bucket whose start it marks
    label: str


@dataclass(frozen=True, slots=True)
class TimeAxis:
    ticks: tuple[Tick, ...]
    bucket_labels: tuple[str, ...]  # when each bucket starts, for its tooltip
    now: str  # the right-hand end, "现在 14:37"
    zone: str  # which clock the labels read, "时区 Asia/Shanghai"


def zone_named(name: str) -> ZoneInfo:
    """The shop's timezone; a name the system does not know reads as UTC, and the axis
    says UTC, so that no label claims a clock it does not show."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(_FALLBACK_ZONE)


def time_axis(series: Series, zone: ZoneInfo, language: str, now_s: float) -> TimeAxis:
    t = translator(language)
    tick_every_s = _TICK_EVERY_S.get(series.bucket_s, series.bucket_s * 10)
    ticks = []
    labels = []
    for index, start_s in enumerate(series.starts_s):
        local = datetime.fromtimestamp(start_s, zone)
        labels.append(f"{local:%H:%M}")
        # A zone half an hour off UTC starts its hour buckets at :30; they tick all the same.
        of_day_s = local.hour * 3600 + local.minute * 60
        of_day_s -= of_day_s % series.bucket_s
        if of_day_s % tick_every_s:
            continue
        label = month_day_label(language, local.month, local.day) if of_day_s == 0 else labels[-1]
        ticks.append(Tick(index, label))
    now_local = datetime.fromtimestamp(now_s, zone)
    return TimeAxis(
        ticks=tuple(ticks),
        bucket_labels=tuple(labels),
        now=t("now_at", clock=f"{now_local:%H:%M}"),
        zone=t("time_zone", zone=zone.key),
    )
