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
from rules.folders import shop_configs_folder

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
            profiles=ProfileReader(
                client, keys, ShopConfigs(shop_configs_folder(settings.profiles))
            ),
            segments=SegmentReader(client, keys),
            decisions=DecisionReader(client, keys),
            templates=templates,
        )


CONSOLE_KEY: web.AppKey[Console] = web.AppKey("console", Console)
# The signed-in shop's grant, put on the request by auth.signed_in.
GRANT_KEY: web.RequestKey[Grant] = web.RequestKey("grant", Grant)


def console_of(request: web.Request) -> Console:
    return request.app[CONSOLE_KEY]


def set_private_cookie(
    response: web.StreamResponse, request: web.Request, name: str, value: str
) -> None:
    """A cookie script cannot read and other sites never send, and, once the console is
    served behind TLS (CRMSTREAM_CONSOLE_SECURE_COOKIE), never sent over plain HTTP."""
    secure = console_of(request).settings.console.secure_cookie
    response.set_cookie(name, value, httponly=True, samesite="Strict", secure=secure, path="/")


def clear_private_cookie(response: web.StreamResponse, request: web.Request, name: str) -> None:
    """Expires a cookie set by set_private_cookie, under the same attributes."""
    secure = console_of(request).settings.console.secure_cookie
    response.del_cookie(name, httponly=True, samesite="Strict", secure=secure, path="/")


def language(request: web.Request) -> str:
    return language_of(request.query.get("lang") or request.cookies.get(LANGUAGE_COOKIE))


def grant_of(request: web.Request) -> Grant:
    return request[GRANT_KEY]


def render(request: web.Request, template: str, status: int = 200, **values: Any) -> web.Response:  # noqa: ANN401 -- template values of any kind
    lang = language(request)
    page = console_of(request).templates.get_template(template)
    body = page.render(
        t=translator(lang),
        lang=lang,
        outcome=lambda name: outcome_label(lang, name),
        recency=lambda name: recency_label(lang, name),
        grant=request.get(GRANT_KEY),
        path=request.path,
        **values,
    )
    response = web.Response(text=body, status=status, content_type="text/html")
    if "lang" in request.query:
        set_private_cookie(response, request, LANGUAGE_COOKIE, lang)
    return response
