"""Signing in with a shop's API token. The token travels in an HttpOnly, SameSite=Strict
cookie (Secure behind TLS) and is checked on every request, so a revoked token signs the
console out at once; every page reads the shop from it, never from the address."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Final

from aiohttp import web

from console.context import (
    GRANT_KEY,
    clear_private_cookie,
    console_of,
    language,
    render,
    set_private_cookie,
)
from console.i18n import translator
from crmstream import metrics

TOKEN_COOKIE: Final = "crm_console"  # noqa: S105 -- the cookie's name, not a secret
# Pages anyone may see: signing in, the stylesheet, the process's health.
OPEN_PATHS: Final = ("/signin", "/static/", "/healthz")
# A refused token is answered after this long: guessing costs time.
_REFUSAL_PAUSE_S: Final = 0.25

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def signed_in(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path.startswith(OPEN_PATHS):
        return await handler(request)
    token = request.cookies.get(TOKEN_COOKIE, "")
    grant = await console_of(request).tokens.verify(token) if token else None
    if grant is None:
        raise web.HTTPSeeOther("/signin")
    request[GRANT_KEY] = grant
    return await handler(request)


async def sign_in_page(request: web.Request) -> web.StreamResponse:
    return render(request, "signin.html", problem=None)


async def sign_in(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    token = str(form.get("token", "")).strip()
    grant = await console_of(request).tokens.verify(token) if token else None
    if grant is None:
        metrics.HTTP_AUTH_FAILURES.labels("invalid" if token else "missing").inc()
        await asyncio.sleep(_REFUSAL_PAUSE_S)
        problem = translator(language(request))("bad_token")
        return render(request, "signin.html", status=401, problem=problem)
    signed = web.HTTPSeeOther("/")
    set_private_cookie(signed, request, TOKEN_COOKIE, token)
    raise signed


async def sign_out(request: web.Request) -> web.StreamResponse:
    out = web.HTTPSeeOther("/signin")
    clear_private_cookie(out, request, TOKEN_COOKIE)
    raise out
