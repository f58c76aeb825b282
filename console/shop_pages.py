"""The shop-wide pages besides the overview: segments with their members, and the rules."""

from __future__ import annotations

import csv
import io
from typing import Final
from urllib.parse import quote

from aiohttp import web

from console.charts import bars
from console.context import console_of, grant_of, language, render
from console.i18n import outcome_label, translator
from console.rule_words import (
    channels_words,
    goal_words,
    limits_sentence,
    ordering_words,
    when_words,
)
from handlers.rule_sets import load_rule_set
from handlers.triggers.stats import read_rule_stats
from rules.lift import SUPPRESSED

PAGE: Final = 50


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
    console, shop, lang = console_of(request), grant_of(request).shop, language(request)
    t = translator(lang)
    rule_set = load_rule_set(console.settings)
    daily_cap = console.settings.triggers.daily_cap
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
                "when": when_words(rule, lang),
                "channels": channels_words(rule, lang),
                "limits": limits_sentence(rule, lang, daily_cap),
                "decided": ordering_words(compiled.ordering, lang),
                "goal": goal_words(rule, lang),
                "stats": None if entry is None else entry.as_dict(),
                "chart": None
                if entry is None
                else bars(
                    f"{rule.id}: {t('fired')}",
                    [(t("sent"), float(entry.reached)), (t("held_out"), float(entry["holdout"]))]
                    + [
                        (outcome_label(lang, reason), float(entry[reason])) for reason in SUPPRESSED
                    ],
                ),
            }
        )
    return render(request, "rules.html", rows=rows)
