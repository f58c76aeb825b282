"""The rules page's backtest: what a rule would have fired over an uploaded file of past
events, run by the live engine on a scratch key space, sending nothing.

The events stream to a scratch file under the byte cap and are read a line at a time; a
cap on events (CRMSTREAM_CONSOLE_MAX_BACKTEST_EVENTS) bounds how long the page waits."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Final

from aiohttp import web

from console.context import console_of, language, render
from console.i18n import translator
from console.uploads import FileRule, Form, TooLarge, UploadRefused, receive_form
from handlers.backtest import backtest, more_events_than
from rules.folders import rules_folder
from rules.loader import RuleSetError

MAX_EVENTS_BYTES: Final = 20 * 1024 * 1024
MAX_EVENTS_VARIABLE: Final = "CRMSTREAM_CONSOLE_MAX_BACKTEST_EVENTS"
_FILES: Final = {"events": FileRule(MAX_EVENTS_BYTES), "rule_file": FileRule(256 * 1024)}


def shipped_rule_files(rules_dir: Path) -> list[str]:
    return sorted(path.name for path in rules_dir.glob("*.yaml"))


async def run_backtest(request: web.Request) -> web.StreamResponse:
    console = console_of(request)
    t = translator(language(request))
    max_events = console.settings.console.max_backtest_events
    with tempfile.TemporaryDirectory(prefix="crmstream-console-") as scratch:
        folder = Path(scratch)
        try:
            form = await receive_form(request, folder, _FILES, ("rule",))
        except TooLarge as exc:
            return _page(request, 413, problem=t("too_large", size=exc.shown_size))
        except UploadRefused as exc:
            return _page(request, 400, problem=t("bad_upload", why=str(exc)))
        rule_file = _rule_file(form, rules_folder(console.settings.triggers), folder)
        events = form.files.get("events")
        if rule_file is None or events is None:
            return _page(request, 400, problem=t("backtest_needs"))
        if await asyncio.to_thread(more_events_than, events.path, max_events):
            limit = f"{max_events:,}"
            problem = t("too_many_events", limit=limit, setting=MAX_EVENTS_VARIABLE)
            return _page(request, 413, problem=problem)
        try:
            report = await backtest(console.settings, rule_file, events.path)
        except RuleSetError as exc:
            # Said of the file as the merchant named it, not of its scratch copy.
            shown = _shown_name(form, rule_file)
            problems = [str(problem).replace(str(rule_file), shown) for problem in exc.problems]
            return _page(request, 400, problem=t("bad_rule"), details=problems)
        return _page(request, 200, report=report.summary())


def _rule_file(form: Form, rules_dir: Path, folder: Path) -> Path | None:
    """The uploaded rule file, else the shipped one chosen by name (never a path)."""
    upload = form.files.get("rule_file")
    if upload is not None:
        # The rule loader reads .yaml files, whatever the merchant's file was called.
        return upload.path.rename(folder / "rule.yaml")
    chosen = form.fields.get("rule", "")
    if chosen in shipped_rule_files(rules_dir):
        return rules_dir / chosen
    return None


def _shown_name(form: Form, rule_file: Path) -> str:
    upload = form.files.get("rule_file")
    return Path(upload.filename).name if upload is not None else rule_file.name


def _page(request: web.Request, status: int, **values: object) -> web.StreamResponse:
    rules_dir = rules_folder(console_of(request).settings.triggers)
    return render(
        request,
        "backtest.html",
        status=status,
        rule_files=shipped_rule_files(rules_dir),
        **{"report": None, "problem": None, "details": [], **values},
    )


async def backtest_page(request: web.Request) -> web.StreamResponse:
    return _page(request, 200)
