"""The rules page's backtest: what a rule would have fired over an uploaded file of past
events, run by the live engine on a scratch key space, sending nothing."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Final

from aiohttp import web

from console.context import console_of, language, render
from console.i18n import translator
from handlers.backtest import backtest
from rules.loader import RuleSetError

MAX_EVENTS_BYTES: Final = 20 * 1024 * 1024


def shipped_rule_files(rules_dir: Path) -> list[str]:
    return sorted(path.name for path in rules_dir.glob("*.yaml"))


async def run_backtest(request: web.Request) -> web.StreamResponse:
    console = console_of(request)
    t = translator(language(request))
    form = await request.post()
    with tempfile.TemporaryDirectory(prefix="crmstream-console-") as scratch:
        folder = Path(scratch)
        rule_file = _rule_file(form, console.settings.triggers.rules_dir, folder)
        events = form.get("events")
        if rule_file is None or not isinstance(events, web.FileField):
            return _page(request, 400, problem=t("backtest_needs"))
        content = events.file.read(MAX_EVENTS_BYTES + 1)
        if len(content) > MAX_EVENTS_BYTES:
            return _page(request, 413, problem=t("bad_upload", why="> 20 MB"))
        events_file = folder / "events.jsonl"
        events_file.write_bytes(content)
        try:
            report = await backtest(console.settings, rule_file, events_file)
        except RuleSetError as exc:
            # Said of the file as the merchant named it, not of its scratch copy.
            shown = _shown_name(form.get("rule_file"), rule_file)
            problems = [str(problem).replace(str(rule_file), shown) for problem in exc.problems]
            return _page(request, 400, problem=t("bad_rule"), details=problems)
        return _page(request, 200, report=report.summary(sample=5))


def _rule_file(form: object, rules_dir: Path, folder: Path) -> Path | None:
    """The uploaded rule file, else the shipped one chosen by name (never a path)."""
    upload = form.get("rule_file")  # type: ignore[attr-defined]  # aiohttp's MultiDict
    if isinstance(upload, web.FileField) and upload.filename:
        path = folder / "rule.yaml"
        path.write_bytes(upload.file.read(256 * 1024))
        return path
    chosen = str(form.get("rule", ""))  # type: ignore[attr-defined]  # aiohttp's MultiDict
    if chosen in shipped_rule_files(rules_dir):
        return rules_dir / chosen
    return None


def _shown_name(upload: object, rule_file: Path) -> str:
    if isinstance(upload, web.FileField) and upload.filename:
        return Path(upload.filename).name
    return rule_file.name


def _page(request: web.Request, status: int, **values: object) -> web.StreamResponse:
    rules_dir = console_of(request).settings.triggers.rules_dir
    return render(
        request,
        "backtest.html",
        status=status,
        rule_files=shipped_rule_files(rules_dir),
        **{"report": None, "problem": None, "details": [], **values},
    )


async def backtest_page(request: web.Request) -> web.StreamResponse:
    return _page(request, 200)
