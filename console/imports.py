"""The import page: a customer sheet (CSV or Excel) checked row by row, the bad rows
reported by number, the good ones sent as customer.registered events. Importing writes,
so it takes an admin token.

The sheet streams to a scratch file under the byte cap, is read a row at a time and is
sent as it is read, so the console's memory does not grow with the sheet; a cap on rows
(CRMSTREAM_CONSOLE_MAX_IMPORT_ROWS) bounds how long the page waits."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any, Final

from aiohttp import web

from console.context import console_of, grant_of, language, render
from console.i18n import translator
from console.uploads import FileRule, MissingFile, TooLarge, UploadRefused, receive_form
from crmstream.settings import Settings
from storefront.importer import ColumnMapping, Importer
from storefront.sheet_import import (
    SheetCheck,
    SheetReport,
    TooManyRowsError,
    refuse_beyond,
    sheet_publisher,
)
from storefront.sheets import RowError, open_sheet

MAX_UPLOAD_BYTES: Final = 20 * 1024 * 1024
MAX_ROWS_VARIABLE: Final = "CRMSTREAM_CONSOLE_MAX_IMPORT_ROWS"
_SHEET: Final = FileRule(MAX_UPLOAD_BYTES, suffixes=(".csv", ".xlsx"))


async def import_page(request: web.Request) -> web.StreamResponse:
    return render(request, "import.html", report=None, problem=None)


async def import_sheet(request: web.Request) -> web.StreamResponse:
    t = translator(language(request))
    if grant_of(request).scope != "admin":
        return _refused(request, 403, t("needs_admin"))
    try:
        with tempfile.TemporaryDirectory(prefix="crmstream-console-") as scratch:
            report = await _received_and_imported(request, Path(scratch))
    except TooLarge as exc:
        return _refused(request, 413, t("too_large", size=exc.shown_size))
    except TooManyRowsError as exc:
        why = t("too_many_rows", limit=f"{exc.limit:,}", setting=MAX_ROWS_VARIABLE)
        return _refused(request, 413, why)
    except MissingFile:
        return _refused(request, 400, t("bad_upload", why=t("no_file")))
    except (UploadRefused, RowError) as exc:
        return _refused(request, 400, t("bad_upload", why=str(exc)))
    return render(request, "import.html", status=200, report=report, problem=None)


async def _received_and_imported(request: web.Request, folder: Path) -> dict[str, Any]:
    form = await receive_form(request, folder, {"sheet": _SHEET}, ("dry_run",))
    sheet = form.file("sheet")
    dry_run = form.fields.get("dry_run") == "on"
    settings, shop = console_of(request).settings, grant_of(request).shop
    return await asyncio.to_thread(_import, settings, shop, sheet.path, dry_run)


def _refused(request: web.Request, status: int, problem: str) -> web.StreamResponse:
    return render(request, "import.html", status=status, report=None, problem=problem)


def _import(settings: Settings, shop: str, path: Path, dry_run: bool) -> dict[str, Any]:
    """Check every row; unless ``dry_run``, send the good ones. A sheet over the row cap
    is refused before anything is sent, so a refusal never leaves half a sheet sent."""
    max_rows = settings.console.max_import_rows
    if not dry_run:
        with open_sheet(path) as sheet:
            refuse_beyond(sheet.rows(), max_rows)
    report = SheetReport()
    with open_sheet(path) as sheet:
        mapped, unknown = ColumnMapping({}).resolve(sheet.headers)
        importer = Importer(
            shop=shop, source=f"console/{path.suffix[1:]}", mapping=mapped,
            hash_key=settings.privacy_hash_key(),
        )  # fmt: skip
        events = SheetCheck.of(settings, importer, max_rows).events(sheet.rows(), report)
        sent = 0
        if dry_run:
            for _event in events:
                pass
        else:
            with sheet_publisher(settings) as publisher:
                for valid, value in events:
                    publisher.publish_valid(valid, value)
            sent = publisher.report.delivered
    return {
        "good": report.good, "bad_rows": report.bad_rows, "bad": report.bad, "sent": sent,
        "dry_run": dry_run, "unknown": unknown,
    }  # fmt: skip
