"""The import page: a customer sheet (CSV or Excel) checked row by row, the bad rows
reported by number, the good ones sent as customer.registered events. Importing writes,
so it takes an admin token."""

from __future__ import annotations

import asyncio
import csv
import tempfile
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from aiohttp import web
from openpyxl.utils.exceptions import InvalidFileException

from console.context import console_of, grant_of, language, render
from console.i18n import translator
from crmstream.settings import Settings
from schemas.decode import Decoder
from schemas.errors import InvalidEventError
from storefront.importer import ColumnMapping, Importer, RowError, read_rows
from storefront.publisher import Publisher, encode

MAX_UPLOAD_BYTES: Final = 20 * 1024 * 1024
# A sheet that is not what its name says: bad text encoding, a broken CSV, not a workbook.
_UNREADABLE: Final = (RowError, UnicodeDecodeError, csv.Error, zipfile.BadZipFile,
                      InvalidFileException)  # fmt: skip
_SUFFIXES: Final = (".csv", ".xlsx")


async def import_page(request: web.Request) -> web.StreamResponse:
    return render(request, "import.html", report=None, problem=None)


async def import_sheet(request: web.Request) -> web.StreamResponse:
    t = translator(language(request))
    grant = grant_of(request)
    if grant.scope != "admin":
        return render(request, "import.html", status=403, report=None, problem=t("needs_admin"))
    form = await request.post()
    upload = form.get("sheet")
    if not isinstance(upload, web.FileField) or not upload.filename:
        return render(request, "import.html", status=400, report=None,
                      problem=t("bad_upload", why=t("no_file")))  # fmt: skip
    suffix = Path(upload.filename).suffix.lower()
    if suffix not in _SUFFIXES:
        return render(request, "import.html", status=400, report=None,
                      problem=t("bad_upload", why=".csv / .xlsx"))  # fmt: skip
    content = upload.file.read(MAX_UPLOAD_BYTES + 1)
    if len(content) > MAX_UPLOAD_BYTES:
        return render(request, "import.html", status=413, report=None,
                      problem=t("bad_upload", why="> 20 MB"))  # fmt: skip
    settings = console_of(request).settings
    dry_run = form.get("dry_run") == "on"
    try:
        report = await asyncio.to_thread(_import, settings, grant.shop, suffix, content, dry_run)
    except _UNREADABLE as exc:
        why = str(exc) if isinstance(exc, RowError) else type(exc).__name__
        return render(request, "import.html", status=400, report=None,
                      problem=t("bad_upload", why=why))  # fmt: skip
    return render(request, "import.html", status=200, report=report, problem=None)


def _import(
    settings: Settings, shop: str, suffix: str, content: bytes, dry_run: bool
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"sheet{suffix}"
        path.write_bytes(content)
        headers, rows = read_rows(path)
        mapped, unknown = ColumnMapping({}).resolve(headers)
        importer = Importer(
            shop=shop, source=f"console/{suffix[1:]}", mapping=mapped,
            hash_key=settings.privacy_hash_key(),
        )  # fmt: skip
        decoder = Decoder()
        not_after = decoder.not_after(datetime.now(UTC))
        good: list[bytes] = []
        bad: list[tuple[int, str]] = []
        for row in rows:
            try:
                value = encode(importer.event(row))
                decoder.require(value, not_after)
            except (RowError, InvalidEventError) as exc:
                bad.append((row.number, str(exc)))
                continue
            good.append(value)
    sent = 0
    if not dry_run and good:
        with Publisher(settings) as publisher:
            for value in good:
                publisher.publish_json(value)
        sent = publisher.report.delivered
    return {"good": len(good), "bad": bad, "sent": sent, "dry_run": dry_run, "unknown": unknown}
