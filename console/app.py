"""The console's web application: routes, sign-in, pages that never show a traceback."""

from __future__ import annotations

import logging
from importlib.resources import files

from aiohttp import web

from console import auth, backtests, customers, imports, journeys, overview, shop_pages
from console.context import CONSOLE_KEY, Console, render
from console.i18n import translator
from crmstream.settings import Settings

log = logging.getLogger("crmstream.console")


@web.middleware
async def friendly_errors(request: web.Request, handler: auth.Handler) -> web.StreamResponse:
    """A page the router cannot place, or a failure, gets a page that says so in the
    reader's language; the details go to the log, never to the page."""
    try:
        return await handler(request)
    except web.HTTPNotFound:
        return render(request, "error.html", status=404, message_key="not_found")
    except web.HTTPException:
        raise
    except Exception:
        log.exception("console page %s failed", request.path)
        return render(request, "error.html", status=500, message_key="error_text")


async def healthz(_request: web.Request) -> web.StreamResponse:
    return web.json_response({"status": "alive"})


def build_app(settings: Settings) -> web.Application:
    app = web.Application(
        middlewares=[friendly_errors, auth.signed_in],
        # Only the sign-in form is read whole; files stream to disk (console/uploads.py).
        client_max_size=64 * 1024,
    )
    console = Console.of(settings)
    app[CONSOLE_KEY] = console

    async def close(_app: web.Application) -> None:
        await console.client.aclose()

    app.on_cleanup.append(close)
    app.router.add_get("/signin", auth.sign_in_page)
    app.router.add_post("/signin", auth.sign_in)
    app.router.add_post("/signout", auth.sign_out)
    app.router.add_get("/", overview.overview)
    app.router.add_get("/customers", customers.find)
    app.router.add_get("/customers/{customer}", customers.customer)
    app.router.add_get("/segments", shop_pages.segments)
    app.router.add_get("/segments/{segment}", shop_pages.segment)
    app.router.add_get("/segments/{segment}/members.csv", shop_pages.segment_csv)
    app.router.add_get("/journeys", journeys.journeys)
    app.router.add_get("/journeys/{journey}", journeys.journey)
    app.router.add_get("/rules", shop_pages.rules)
    app.router.add_get("/rules/backtest", backtests.backtest_page)
    app.router.add_post("/rules/backtest", backtests.run_backtest)
    app.router.add_get("/import", imports.import_page)
    app.router.add_post("/import", imports.import_sheet)
    app.router.add_get("/healthz", healthz)
    app.router.add_static("/static/", path=str(files("console") / "static"))
    return app


def run_console(settings: Settings, host: str, port: int) -> None:
    """Serve the console until stopped."""
    translator("zh")  # fail now, not on the first page, if the words are broken
    web.run_app(build_app(settings), host=host, port=port, print=None)
