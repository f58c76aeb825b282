"""What every page of the console reads through: one Redis client, the readers of the
engine's state, the templates."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jinja2
from aiohttp import web

from console.i18n import language_of, outcome_label, recency_label, translator
from crmstream.settings import Settings
from handlers.keys import Keys
from handlers.profile.read import ProfileReader
from handlers.redis_client import RedisClient, connect
from handlers.segments.read import SegmentReader
from handlers.shop_configs import ShopConfigs
from handlers.tokens import Grant, TokenStore
from handlers.triggers.decisions import DecisionReader

LANGUAGE_COOKIE = "crm_lang"


@dataclass(frozen=True, slots=True)
class Console:
    settings: Settings
    client: RedisClient
    keys: Keys
    tokens: TokenStore
    profiles: ProfileReader
    segments: SegmentReader
    decisions: DecisionReader
    templates: jinja2.Environment

    @classmethod
    def of(cls, settings: Settings) -> Console:
        client = connect(settings.redis)
        keys = Keys(settings.redis.key_prefix)
        templates = jinja2.Environment(
            loader=jinja2.PackageLoader("console", "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
        )
        return cls(
            settings=settings,
            client=client,
            keys=keys,
            tokens=TokenStore(client, keys, settings.privacy_hash_key()),
            profiles=ProfileReader(client, keys, ShopConfigs(settings.profiles.shop_config_dir)),
            segments=SegmentReader(client, keys),
            decisions=DecisionReader(client, keys),
            templates=templates,
        )


CONSOLE_KEY: web.AppKey[Console] = web.AppKey("console", Console)


def console_of(request: web.Request) -> Console:
    return request.app[CONSOLE_KEY]


def language(request: web.Request) -> str:
    return language_of(request.query.get("lang") or request.cookies.get(LANGUAGE_COOKIE))


def grant_of(request: web.Request) -> Grant:
    grant: Grant = request["grant"]
    return grant


def render(request: web.Request, template: str, status: int = 200, **values: Any) -> web.Response:  # noqa: ANN401 -- template values of any kind
    lang = language(request)
    page = console_of(request).templates.get_template(template)
    body = page.render(
        t=translator(lang),
        lang=lang,
        outcome=lambda name: outcome_label(lang, name),
        recency=lambda name: recency_label(lang, name),
        grant=request.get("grant"),
        path=request.path,
        **values,
    )
    response = web.Response(text=body, status=status, content_type="text/html")
    if "lang" in request.query:
        response.set_cookie(LANGUAGE_COOKIE, lang, httponly=True, samesite="Strict")
    return response
