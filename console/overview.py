"""The overview page: the shop's events, decisions and dead letters over the last hour and
day, its segments' sizes and its rules' outcomes."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping

from aiohttp import web

from console.buckets import last_day_by_hour, last_hour_by_minute
from console.charts import bars, time_columns
from console.context import console_of, grant_of, language, render
from console.i18n import outcome_label, translator
from console.time_axis import time_axis, zone_named
from handlers.flow import shop_minutes, trigger_minutes
from handlers.triggers.stats import read_rule_stats

# What each card counts: its id in the page, and the keys of its words in console/i18n.py.
_CARDS = ("events", "decisions", "dead_letters")


async def overview(request: web.Request) -> web.StreamResponse:
    console, shop, lang = console_of(request), grant_of(request).shop, language(request)
    t = translator(lang)
    client, keys, now = console.client, console.keys, time.time()
    zone = zone_named(console.profiles.config_of(shop).timezone)
    decided: Counter[int] = Counter()
    for (_outcome, minute), count in (await trigger_minutes(client, keys, shop, now)).items():
        decided[minute] += count
    per_minute: dict[str, Mapping[int, int]] = {
        "events": await shop_minutes(client, keys, shop, now),
        "decisions": decided,
        "dead_letters": await shop_minutes(client, keys, shop, now, keys.dead_letter_minutes),
    }
    charts = []
    for card in _CARDS:
        hour = last_hour_by_minute(per_minute[card], now)
        day = last_day_by_hour(per_minute[card], now)
        drawn = {
            window: time_columns(
                f"{card}-last-{window}",
                t("chart_total", title=t(f"{card}_per_{per}"), total=series.total),
                series,
                time_axis(series, zone, lang, now),
            )
            for window, per, series in (("hour", "minute", hour), ("day", "hour", day))
        }
        # The card's title is the day chart's total: the sum of the bars beneath it.
        charts.append({"id": card, "total": day.total, **drawn})
    sizes = await console.segments.sizes(shop)
    by_outcome = [
        (f"{entry.rule} · {outcome_label(lang, outcome)}", float(count))
        for entry in await read_rule_stats(client, keys, shop)
        for outcome, count in sorted(entry.counts.items())
        if count
    ]
    return render(
        request,
        "overview.html",
        charts=charts,
        sizes_chart=bars(t("segment_sizes"), [(name, float(n)) for name, n in sizes.items()]),
        triggers_chart=bars(t("triggers_by_rule"), by_outcome),
    )
