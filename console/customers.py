"""The customer pages: find one, then their profile card, timeline and segments."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from aiohttp import web

from console.context import console_of, grant_of, language, render
from console.i18n import RECENCY, translator
from handlers.customer_lookup import customer_by_phone, looks_like_phone
from handlers.profile.read import iso
from schemas.types import is_customer_id


async def find(request: web.Request) -> web.StreamResponse:
    wanted = request.query.get("q", "").strip()
    if not wanted:
        return render(request, "find.html", problem=None, wanted="")
    t = translator(language(request))
    console, shop = console_of(request), grant_of(request).shop
    found = wanted if is_customer_id(wanted) else None
    if (found is None or await console.profiles.read(shop, found) is None) and looks_like_phone(
        wanted
    ):
        hash_key = console.settings.privacy_hash_key()
        by_phone = await customer_by_phone(console.client, console.keys, hash_key, shop, wanted)
        if by_phone is None:
            return render(request, "find.html", status=404, problem=t("no_phone"), wanted=wanted)
        found = by_phone
    if found is None:
        return render(request, "find.html", status=400, problem=t("bad_customer"), wanted=wanted)
    raise web.HTTPSeeOther(f"/customers/{quote(found, safe='')}")


async def customer(request: web.Request) -> web.StreamResponse:
    who = request.match_info["customer"]
    t = translator(language(request))
    if not is_customer_id(who):
        return render(request, "find.html", status=400, problem=t("bad_customer"), wanted=who)
    shop = grant_of(request).shop
    console = console_of(request)
    profile = await console.profiles.read(shop, who)
    if profile is None:
        problem = t("no_customer", who=who)
        return render(request, "find.html", status=404, problem=problem, wanted=who)
    decisions = await console.decisions.log(shop, who)
    return render(
        request,
        "customer.html",
        who=who,
        profile=profile,
        segments=await console.segments.of_customer(shop, who),
        journeys=await console.decisions.journeys(shop, who),
        timeline=timeline(profile, decisions),
    )


def timeline(profile: dict[str, Any], decisions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Decisions and the moments the profile remembers, newest first. A decision reads
    at its occurrence's time, a release at when it went out; what the customer did, at
    when they last did it."""
    # A release logs only its trigger: the rule, channel and reason are its hold's.
    held = {entry["trigger_id"]: entry for entry in decisions if entry["outcome"] == "held"}
    entries: list[dict[str, Any]] = []
    for logged in decisions:
        entry = logged
        if entry["outcome"] == "journey":
            # A journey's exit: its reason is why the customer left, not conditions read.
            entry = {
                **entry, "rule": entry.get("journey", ""), "reason": [],
                "left_because": entry.get("reason", ""), "at_step": entry.get("step", ""),
            }  # fmt: skip
        if entry["outcome"] == "released":
            entry = {**held.get(entry["trigger_id"], {}), **entry, "at": entry["decided_at"]}
        entries.append(
            {
                **entry,
                "kind": "decision",
                "at": iso(entry.get("at", entry["decided_at"])),
                "release_at": iso(entry.get("release_at")),
            }
        )
    for name in RECENCY:
        moment = profile["recency"].get(name)
        if moment is not None:
            entries.append({"kind": "activity", "at": moment, "activity": name})
    entries.sort(key=lambda entry: entry["at"], reverse=True)
    return entries
