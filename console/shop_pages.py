"""The shop-wide pages: the overview, segments with their members, and the rules."""

from __future__ import annotations

import csv
import io
import time
from collections import Counter
from collections.abc import Mapping
from typing import Final
from urllib.parse import quote

from aiohttp import web

from console.charts import bars, columns
from console.context import console_of, grant_of, language, render
from console.i18n import outcome_label, translator
from handlers.flow import shop_minutes, trigger_minutes
from handlers.pipeline import load_rule_set
from handlers.triggers.stats import read_rule_stats
from rules.lift import SUPPRESSED

PAGE: Final = 50


def _last_hour_and_day(minutes: Mapping[int, int], now: float) -> tuple[list[float], list[float]]:
    """Per minute over the last hour, and per hour over the last day, oldest first."""
    this_minute = int(now) // 60
    last_hour = [float(minutes.get(m, 0)) for m in range(this_minute - 59, this_minute + 1)]
    this_hour = this_minute // 60
    last_day = [
        float(sum(minutes.get(hour * 60 + m, 0) for m in range(60)))
        for hour in range(this_hour - 23, this_hour + 1)
    ]
    return last_hour, last_day


async def overview(request: web.Request) -> web.StreamResponse:
    console, shop, lang = console_of(request), grant_of(request).shop, language(request)
    t = translator(lang)
    client, keys, now = console.client, console.keys, time.time()
    sizes = await console.segments.sizes(shop)
    stats = await read_rule_stats(client, keys, shop)
    by_outcome = [
        (f"{entry.rule} · {outcome_label(lang, outcome)}", float(count))
        for entry in stats
        for outcome, count in sorted(entry.counts.items())
        if count
    ]
    decided: Counter[int] = Counter()
    for (_outcome, minute), count in (await trigger_minutes(client, keys, shop, now)).items():
        decided[minute] += count
    charts = []
    for title, minutes in (
        ("events", await shop_minutes(client, keys, shop, now)),
        ("decisions", decided),
        ("dead_letters", await shop_minutes(client, keys, shop, now, keys.dead_letter_minutes)),
    ):
        last_hour, last_day = _last_hour_and_day(minutes, now)
        charts.append(
            {
                "id": title,
                "total": int(sum(last_day)),
                "hour": columns(t(f"{title}_per_minute"), last_hour, "-60 min", t("now")),
                "day": columns(t(f"{title}_per_hour"), last_day, "-24 h", t("now")),
            }
        )
    return render(
        request,
        "overview.html",
        charts=charts,
        sizes_chart=bars(t("segment_sizes"), [(name, float(n)) for name, n in sizes.items()]),
        triggers_chart=bars(t("triggers_by_rule"), by_outcome),
    )


async def segments(request: web.Request) -> web.StreamResponse:
    sizes = await console_of(request).segments.sizes(grant_of(request).shop)
    return render(request, "segments.html", sizes=sorted(sizes.items()))


async def segment(request: web.Request) -> web.StreamResponse:
    console, shop = console_of(request), grant_of(request).shop
    name = request.match_info["segment"]
    sizes = await console.segments.sizes(shop)
    if name not in sizes:
        t = translator(language(request))
        return render(request, "segments.html", status=404, sizes=sorted(sizes.items()),
                      problem=t("no_segment"))  # fmt: skip
    cursor = request.query.get("cursor") or None
    page = await console.segments.members(shop, name, cursor, PAGE)
    return render(
        request,
        "segment.html",
        name=name,
        size=sizes[name],
        members=page.members,
        next_page=None if page.cursor is None else f"?cursor={quote(page.cursor, safe='')}",
        first=cursor is None,
    )


async def segment_csv(request: web.Request) -> web.StreamResponse:
    console, shop = console_of(request), grant_of(request).shop
    name = request.match_info["segment"]
    if name not in await console.segments.sizes(shop):
        raise web.HTTPNotFound(text="no such segment")
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["shop", "segment", "customer"])
    cursor: str | None = None
    while True:
        page = await console.segments.members(shop, name, cursor, 1000)
        writer.writerows([shop, name, member] for member in page.members)
        if page.cursor is None:
            break
        cursor = page.cursor
    return web.Response(
        text=out.getvalue(),
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{shop}-{name}.csv"'},
    )


async def rules(request: web.Request) -> web.StreamResponse:
    console, shop = console_of(request), grant_of(request).shop
    t = translator(language(request))
    rule_set = load_rule_set(console.settings)
    stats = {
        entry.rule: entry for entry in await read_rule_stats(console.client, console.keys, shop)
    }
    rows = []
    for compiled in rule_set.rules:
        rule = compiled.rule
        entry = stats.get(rule.id)
        rows.append(
            {
                "rule": rule,
                "stats": None if entry is None else entry.as_dict(),
                "chart": None
                if entry is None
                else bars(
                    f"{rule.id}: {t('fired')}",
                    [(t("sent"), float(entry.reached)), (t("held_out"), float(entry["holdout"]))]
                    + [(t("suppressed") + f" · {r}", float(entry[r])) for r in SUPPRESSED],
                ),
            }
        )
    return render(request, "rules.html", rows=rows)
