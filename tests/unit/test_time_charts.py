"""The overview's time charts: a bucket for every minute of the last hour and every hour of
the last day, empty or not; the boundaries; ticks in the shop's local time; the caption's
total the sum of the bars it stands over."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from console.buckets import Series, last_day_by_hour, last_hour_by_minute
from console.charts import time_columns
from console.time_axis import time_axis, zone_named

SVG = "{http://www.w3.org/2000/svg}"
SHANGHAI = ZoneInfo("Asia/Shanghai")
# 2026-03-05 14:37:30 in Shanghai: 06:37:30 UTC.
NOW = datetime(2026, 3, 5, 6, 37, 30, tzinfo=UTC).timestamp()
THIS_MINUTE = int(NOW) // 60
THIS_HOUR = THIS_MINUTE // 60


def test_nothing_counted_is_every_bucket_empty() -> None:
    hour, day = last_hour_by_minute({}, NOW), last_day_by_hour({}, NOW)
    assert hour.counts == (0,) * 60
    assert day.counts == (0,) * 24
    assert hour.total == day.total == 0


def test_the_last_hour_ends_with_the_current_minute() -> None:
    minutes = {THIS_MINUTE - 60: 100, THIS_MINUTE - 59: 1, THIS_MINUTE: 2, THIS_MINUTE + 1: 50}
    hour = last_hour_by_minute(minutes, NOW)
    assert hour.counts[0] == 1
    assert hour.counts[-1] == 2
    assert sum(hour.counts[1:-1]) == 0
    assert hour.total == 3
    assert hour.first_start_s == (THIS_MINUTE - 59) * 60
    assert hour.starts_s[-1] == THIS_MINUTE * 60 <= NOW < hour.starts_s[-1] + 60


def test_the_last_day_ends_with_the_current_hour() -> None:
    first_hour = THIS_HOUR - 23
    minutes = {
        first_hour * 60 - 1: 100,  # the minute before the day: left out
        first_hour * 60: 1,  # the day's first minute
        first_hour * 60 + 59: 2,  # the first hour's last minute
        THIS_HOUR * 60: 4,  # the current hour's first minute
        THIS_MINUTE: 8,
    }
    day = last_day_by_hour(minutes, NOW)
    assert len(day.counts) == 24
    assert day.counts[0] == 3
    assert day.counts[-1] == 12
    assert day.total == 15
    assert day.first_start_s == first_hour * 3600


def ticks_of(series: Series, zone: ZoneInfo, language: str) -> list[str]:
    return [tick.label for tick in time_axis(series, zone, language, NOW).ticks]


def test_the_hour_ticks_every_ten_minutes_of_local_time() -> None:
    hour = last_hour_by_minute({}, NOW)
    assert ticks_of(hour, SHANGHAI, "zh") == ["13:40", "13:50", "14:00", "14:10", "14:20", "14:30"]
    axis = time_axis(hour, SHANGHAI, "en", NOW)
    assert axis.bucket_labels[0] == "13:38"
    assert axis.bucket_labels[-1] == "14:37"
    assert [tick.index for tick in axis.ticks] == [2, 12, 22, 32, 42, 52]
    assert axis.now == "now 14:37"
    assert axis.zone == "time zone Asia/Shanghai"
    assert time_axis(hour, SHANGHAI, "zh", NOW).now == "现在 14:37"


def test_the_day_ticks_every_three_hours_and_names_the_day_at_midnight() -> None:
    day = last_day_by_hour({}, NOW)
    expected = ["15:00", "18:00", "21:00", "{date}", "03:00", "06:00", "09:00", "12:00"]
    assert ticks_of(day, SHANGHAI, "zh") == [label.format(date="3月5日") for label in expected]
    assert ticks_of(day, SHANGHAI, "en") == [label.format(date="5 Mar") for label in expected]


def test_a_zone_half_an_hour_off_still_ticks_and_a_bad_one_reads_as_utc() -> None:
    day = last_day_by_hour({}, NOW)
    # Its hours start at :30 local; the one holding midnight is named by its date.
    assert ticks_of(day, ZoneInfo("Asia/Kolkata"), "en") == [
        "12:30", "15:30", "18:30", "21:30", "5 Mar", "03:30", "06:30", "09:30",
    ]  # fmt: skip
    for name in ("Mars/Olympus_Mons", "", "../etc/passwd"):
        zone = zone_named(name)
        assert zone.key == "UTC"
        assert time_axis(day, zone, "en", NOW).zone == "time zone UTC"


def svg_of(series: Series, caption: str = "events") -> ET.Element:
    markup = time_columns("chart", caption, series, time_axis(series, SHANGHAI, "zh", NOW))
    return ET.fromstring(str(markup))  # noqa: S314 -- our own SVG, drawn just above


def test_the_bars_add_up_to_the_caption_and_every_bucket_is_drawn() -> None:
    minutes = {THIS_MINUTE - n: n % 7 for n in range(0, 24 * 60, 13)}
    for series in (last_hour_by_minute(minutes, NOW), last_day_by_hour(minutes, NOW)):
        svg = svg_of(series, f"events ({series.total})")
        buckets = svg.findall(f"{SVG}rect[@class='bucket']")
        assert len(buckets) == len(series.counts)
        assert sum(int(rect.attrib["data-count"]) for rect in buckets) == series.total
        assert f"({series.total})" in "".join(svg.itertext())
        ticks = svg.findall(f"{SVG}g[@class='tick']")
        assert len(ticks) == (6 if series.bucket_s == 60 else 8)


@pytest.mark.parametrize("series", [last_hour_by_minute({}, NOW), last_day_by_hour({}, NOW)])
def test_an_empty_chart_claims_no_count(series: Series) -> None:
    svg = svg_of(series)
    scale = [text.text for text in svg.findall(f"{SVG}text[@class='scale']")]
    assert scale == ["0"]
    heights = {rect.attrib["height"] for rect in svg.findall(f"{SVG}rect[@class='bucket']")}
    assert heights == {"2.0"}  # a stub on the baseline: the bucket is there, empty


def test_the_scale_reads_the_tallest_bar() -> None:
    svg = svg_of(last_hour_by_minute({THIS_MINUTE - 5: 7, THIS_MINUTE - 3: 2}, NOW))
    assert [text.text for text in svg.findall(f"{SVG}text[@class='scale']")] == ["0", "7"]


def test_labels_are_escaped() -> None:
    series = last_hour_by_minute({}, NOW)
    markup = str(time_columns("c", "<script>", series, time_axis(series, SHANGHAI, "en", NOW)))
    assert "<script>" not in markup
    assert "&lt;script&gt;" in markup
