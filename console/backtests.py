"""The rules page's backtest: what a rule would have fired, or what a journey would have
done, over an uploaded file of past events, run by the live engine on a scratch key
space, sending nothing.

The events stream to a scratch file under the byte cap and are read a line at a time; a
cap on events (CRMSTREAM_CONSOLE_MAX_BACKTEST_EVENTS) bounds how long the page waits."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import yaml
from aiohttp import web

from console.charts import funnel
from console.context import console_of, language, render
from console.i18n import translator
from console.uploads import FileRule, Form, TooLarge, UploadRefused, receive_form
from crmstream.settings import TriggerSettings
from handlers.backtest import backtest, more_events_than
from handlers.journeys.backtest import JourneyBacktest, backtest_journey
from rules.folders import journeys_folder, rules_folder
from rules.loader import RuleSetError

MAX_EVENTS_BYTES: Final = 20 * 1024 * 1024
MAX_EVENTS_VARIABLE: Final = "CRMSTREAM_CONSOLE_MAX_BACKTEST_EVENTS"
_FILES: Final = {"events": FileRule(MAX_EVENTS_BYTES), "rule_file": FileRule(256 * 1024)}
# The select's value for a shipped journey: this, then its file's name (never a path).
_JOURNEY: Final = "journey:"


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
        chosen = _chosen_file(form, console.settings.triggers, folder)
        events = form.files.get("events")
        if chosen is None or events is None:
            return _page(request, 400, problem=t("backtest_needs"))
        rule_file, is_journey = chosen
        if await asyncio.to_thread(more_events_than, events.path, max_events):
            limit = f"{max_events:,}"
            problem = t("too_many_events", limit=limit, setting=MAX_EVENTS_VARIABLE)
            return _page(request, 413, problem=problem)
        return await _run(request, form, rule_file, is_journey, events.path)


async def _run(
    request: web.Request, form: Form, rule_file: Path, is_journey: bool, events: Path
) -> web.StreamResponse:
    settings, t = console_of(request).settings, translator(language(request))
    try:
        if is_journey:
            found = await backtest_journey(settings, rule_file, events)
            return _page(request, 200, journey_report=_journey_report(found, t))
        report = await backtest(settings, rule_file, events)
    except RuleSetError as exc:
        # Said of the file as the merchant named it, not of its scratch copy.
        shown = _shown_name(form, rule_file)
        problems = [str(problem).replace(str(rule_file), shown) for problem in exc.problems]
        return _page(request, 400, problem=t("bad_rule"), details=problems)
    return _page(request, 200, report=report.summary())


def _journey_report(found: JourneyBacktest, t: Callable[..., str]) -> dict[str, Any]:
    """What the page shows of a journey's backtest: the summary, and its steps drawn."""
    summary = found.summary()
    rows = [(found.journey, t("entered"), summary["entered"])]
    rows += [(step["id"], f"{step['id']} · {t('kind_' + step['kind'])}", step["count"])
             for step in summary["steps"]]  # fmt: skip
    title = t("funnel", journey=found.journey, version=found.version)
    return {**summary, "funnel": funnel(title, rows, summary["entered"])}


def _chosen_file(form: Form, settings: TriggerSettings, folder: Path) -> tuple[Path, bool] | None:
    """The uploaded file (a journey if it has steps), else the shipped rule or journey
    chosen by name (never a path); with whether it is a journey."""
    upload = form.files.get("rule_file")
    if upload is not None:
        is_journey = _has_steps(upload.path)
        # The loaders read .yaml files, whatever the merchant's file was called.
        return upload.path.rename(
            folder / ("journey.yaml" if is_journey else "rule.yaml")
        ), is_journey
    chosen = form.fields.get("rule", "")
    if chosen.startswith(_JOURNEY):
        journeys_dir = journeys_folder(settings)
        name = chosen[len(_JOURNEY) :]
        return (journeys_dir / name, True) if name in shipped_rule_files(journeys_dir) else None
    rule = _rule_file(form, rules_folder(settings), folder)
    return None if rule is None else (rule, False)


def _has_steps(path: Path) -> bool:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError):
        return False  # the rule loader says what is wrong with it
    return isinstance(data, dict) and "steps" in data


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
    settings = console_of(request).settings.triggers
    return render(
        request,
        "backtest.html",
        status=status,
        rule_files=shipped_rule_files(rules_folder(settings)),
        journey_files=shipped_rule_files(journeys_folder(settings)),
        **{"report": None, "journey_report": None, "problem": None, "details": [], **values},
    )


async def backtest_page(request: web.Request) -> web.StreamResponse:
    return _page(request, 200)
