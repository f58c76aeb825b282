"""The journeys pages: each journey the shop runs (or has run), and per journey its
versions with their steps drawn as a funnel, the counts of each, why customers left and
the goal against the control group."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from console.charts import funnel
from console.context import console_of, grant_of, language, render
from console.i18n import translator
from handlers.journeys.overview import JourneyView, VersionView, shop_journeys
from schemas.triggers import is_rule_id


async def _views(request: web.Request) -> list[JourneyView]:
    console, shop = console_of(request), grant_of(request).shop
    running = frozenset(console.profiles.config_of(shop).journeys)
    return await shop_journeys(console.client, console.keys, shop, running)


async def journeys(request: web.Request) -> web.StreamResponse:
    return render(
        request, "journeys.html", journeys=[view.summary() for view in await _views(request)]
    )


async def journey(request: web.Request) -> web.StreamResponse:
    t = translator(language(request))
    name = request.match_info["journey"]
    found = await _views(request)
    known = is_rule_id(name)
    view = next((view for view in found if view.journey == name), None) if known else None
    if view is None:
        listed = [view.summary() for view in found]
        return render(request, "journeys.html", status=404 if known else 400,
                      journeys=listed, problem=t("no_journey", journey=name[:64]))  # fmt: skip
    versions = [_version_page(view.journey, version, t) for version in reversed(view.versions)]
    return render(request, "journey.html", journey=view, versions=versions)


def _version_page(journey: str, version: VersionView, t: Any) -> dict[str, Any]:  # noqa: ANN401 -- the translator
    stats = version.stats
    rows = [
        (step.id, f"{step.id} · {t('kind_' + step.kind)}", step.count) for step in version.steps
    ]
    title = t("funnel", journey=journey, version=version.version)
    return {
        "number": version.version,
        "about": version.as_dict(),
        "funnel": funnel(title, [(journey, t("entered"), stats.entered), *rows], stats.entered),
        "steps": version.steps,
        "exited": sorted(stats.exited.items(), key=lambda item: -item[1]),
        "goal": stats.goal_dict(),
    }
